//! Post-processing of source files, per import, once a file has its outcome: tag the
//! object with the outcome, move it to a sub-folder of the import's folder, or delete
//! it. Discovery lists no sub-folders, so a moved file is never found again. A
//! failure is recorded on the file and shown, and never changes the import's outcome.

use crate::model::post_process::{Outcome, PostProcessed, PostProcessing, RUN_TAG, STATUS_TAG};
use crate::model::status::FileStatus;
use crate::ports::SourceFolder;

impl PostProcessing {
    /// Applies the settings to the file `key` (still `etag`) that ended `status` in
    /// `run_id`: tag, then move (copy, then delete) or delete. Stops at the first
    /// failure, which it records.
    pub async fn apply(
        &self,
        bucket: &dyn SourceFolder,
        folder: &str,
        key: &str,
        etag: &str,
        run_id: &str,
        status: FileStatus,
    ) -> PostProcessed {
        let mut done = PostProcessed::default();
        let Some(outcome) = Outcome::of(status) else {
            return done;
        };
        if self.tag {
            let tags = [
                (STATUS_TAG.to_string(), outcome.as_str().to_string()),
                (RUN_TAG.to_string(), run_id.to_string()),
            ];
            if let Err(e) = bucket.cleanup().tag(key, &tags).await {
                done.error = Some(format!(
                    "tagging s3://{}/{key}: {e}{}",
                    bucket.bucket(),
                    hint(&e)
                ));
                return done;
            }
            done.done
                .push(format!("tagged {STATUS_TAG}={}", outcome.as_str()));
        }
        if let Some(to) = self.destination(outcome, folder, key) {
            if let Err(e) = bucket.cleanup().copy(key, etag, &to).await {
                done.error = Some(format!(
                    "moving s3://{}/{key} to {to}: {e}{}",
                    bucket.bucket(),
                    hint(&e)
                ));
                return done;
            }
            if let Err(e) = bucket.cleanup().delete(key, etag).await {
                done.error = Some(format!(
                    "copied to {to}, but deleting s3://{}/{key} failed: {e}{}",
                    bucket.bucket(),
                    hint(&e)
                ));
                return done;
            }
            done.done.push(format!("moved to {to}"));
            done.moved_to = Some(to);
        } else if self.delete.contains(&outcome) {
            if let Err(e) = bucket.cleanup().delete(key, etag).await {
                done.error = Some(format!(
                    "deleting s3://{}/{key}: {e}{}",
                    bucket.bucket(),
                    hint(&e)
                ));
                return done;
            }
            done.done.push("deleted".into());
            done.deleted = Some(true);
        }
        done
    }
}

/// What to do about a refusal an operator can fix.
fn hint(e: &crate::ports::SourceError) -> &'static str {
    match e {
        crate::ports::SourceError::AccessDenied { .. } => {
            " (post-processing needs its own permissions: deploy the stack with AllowSourcePostProcessing=true for the functions' own role, or grant them in the customer's role; docs/operating.md lists them)"
        }
        crate::ports::SourceError::Changed { .. } => {
            " (the object was replaced since it was imported; it is left in place)"
        }
        _ => "",
    }
}
