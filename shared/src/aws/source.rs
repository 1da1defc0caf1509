//! Reaching an import's bucket with the import's credentials: the Lambda's own role,
//! an assumed role (with external id), or an access key whose secret is in Secrets
//! Manager. Errors carry MoEngage's messages where MoEngage has one.

use async_trait::async_trait;
use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials as AwsCredentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ProvideErrorKind;

use super::{describe_sdk, service_error};
use crate::error::{ErrorClass, ServiceError};
use crate::model::config::{Credentials, SecretRef, Source};
use crate::model::naming::FilePattern;
use crate::ports::{
    ListedFile, Listing, ObjectBody, ObjectSource, SECRET_TAG, Secrets, SourceCleanup, SourceError,
    SourceFolder, check_secret_tag,
};

/// Builds per-import S3 clients from the process's base config.
#[derive(Debug, Clone)]
pub struct SourceAccess {
    sdk: SdkConfig,
    sts: aws_sdk_sts::Client,
    secrets: aws_sdk_secretsmanager::Client,
    copies: CopyParts,
}

/// How an object is copied: in one `CopyObject` up to `single` bytes (S3 refuses a
/// larger source), else in parts of `part` bytes (`UploadPartCopy`).
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/copy-object.html
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyParts {
    pub single: u64,
    pub part: u64,
}

impl Default for CopyParts {
    fn default() -> Self {
        Self {
            // 5 GB: CopyObject's largest source.
            single: 5 << 30,
            // 10,000 parts of 512 MiB reach S3's largest object (5 TB); each part must
            // be 5 MiB to 5 GiB.
            // https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
            part: 512 << 20,
        }
    }
}

/// A bucket reached with an import's credentials.
#[derive(Debug, Clone)]
pub struct SourceBucket {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub folder: String,
    pub region: String,
    pub copies: CopyParts,
}

impl SourceAccess {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            sts: aws_sdk_sts::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            copies: CopyParts::default(),
        }
    }

    /// Copies with other part sizes (tests copy small objects in parts).
    pub fn with_copy_parts(mut self, copies: CopyParts) -> Self {
        self.copies = copies;
        self
    }

    /// Connects to the import's bucket, finding its region when the config gives none.
    /// `import_id` names the assumed role's session and must be bound to an access-key
    /// secret.
    pub async fn reach(
        &self,
        source: &Source,
        import_id: &str,
    ) -> Result<SourceBucket, SourceError> {
        let creds = match &source.credentials {
            Credentials::Default {} => None,
            Credentials::AssumeRole {
                role_arn,
                external_id,
            } => {
                let out = self
                    .sts
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session_name(import_id))
                    .set_external_id(external_id.clone())
                    .send()
                    .await
                    .map_err(|e| match super::classify_sdk(&e) {
                        // STS throttling or a 5xx: worth a retry, not a failed file.
                        ErrorClass::Retryable => service_error("STS", "AssumeRole", e).into(),
                        ErrorClass::Permanent => SourceError::AssumeRole {
                            role: role_arn.clone(),
                            reason: describe_sdk(&e),
                        },
                    })?;
                let c = out.credentials().ok_or_else(|| SourceError::AssumeRole {
                    role: role_arn.clone(),
                    reason: "STS returned no credentials".into(),
                })?;
                Some(AwsCredentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    std::time::SystemTime::try_from(*c.expiration()).ok(),
                    "s3imports-assume-role",
                ))
            }
            Credentials::AccessKey {
                access_key_id,
                secret_access_key_ref,
            } => {
                let secret = self.secret(secret_access_key_ref, import_id).await?;
                Some(AwsCredentials::new(
                    access_key_id,
                    secret.trim(),
                    None,
                    None,
                    "s3imports-access-key",
                ))
            }
        };
        let client_for = |region: Option<String>| {
            let mut b = super::s3_config(&self.sdk);
            if let Some(r) = region {
                b = b.region(Region::new(r));
            }
            if let Some(c) = &creds {
                b = b.credentials_provider(SharedCredentialsProvider::new(c.clone()));
            }
            aws_sdk_s3::Client::from_conf(b.build())
        };
        let region = match &source.region {
            Some(r) => r.clone(),
            None => bucket_region(&client_for(None), source).await?,
        };
        Ok(SourceBucket {
            client: client_for(Some(region.clone())),
            bucket: source.bucket.clone(),
            folder: source.folder.clone(),
            region,
            copies: self.copies,
        })
    }
}

/// A Secrets Manager error: throttling is worth a retry; a missing secret or a refusal
/// is not, and names the secret.
fn secret_error<E>(
    secret: &str,
    operation: &'static str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> SourceError
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
{
    let denied = e
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "AccessDeniedException");
    match super::classify_sdk(&e) {
        ErrorClass::Retryable => service_error("Secrets Manager", operation, e).into(),
        // The functions' roles read only secrets under SecretsPrefix that carry the
        // binding tag (template.yaml): IAM refuses any other before its tag is seen.
        ErrorClass::Permanent if denied => SourceError::SecretDenied {
            secret: secret.to_string(),
            reason: describe_sdk(&e),
        },
        ErrorClass::Permanent => SourceError::Secret {
            secret: secret.to_string(),
            reason: describe_sdk(&e),
        },
    }
}

/// STS session names allow `[\w+=,.@-]{2,64}`.
fn session_name(s: &str) -> String {
    let mut name: String = format!("s3imports-{s}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// The bucket's region, from HeadBucket's `x-amz-bucket-region` (sent on success and on
/// the redirect S3 answers from another region).
async fn bucket_region(
    client: &aws_sdk_s3::Client,
    source: &Source,
) -> Result<String, SourceError> {
    match client.head_bucket().bucket(&source.bucket).send().await {
        Ok(out) => Ok(out
            .bucket_region()
            .map(str::to_string)
            .or_else(|| client.config().region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".into())),
        Err(e) => {
            if let Some(r) = e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
            {
                return Ok(r.to_string());
            }
            // A HEAD response has no body, so a 403 cannot say whether the key is wrong
            // or access is denied: carry on in our own region and let the listing,
            // which does say, report it.
            match (
                e.raw_response().map(|r| r.status().as_u16()),
                client.config().region(),
            ) {
                (Some(403), Some(r)) => Ok(r.to_string()),
                _ => Err(s3_error(
                    "HeadBucket",
                    e,
                    source.bucket.as_str(),
                    &source.folder,
                    None,
                )),
            }
        }
    }
}

/// Turns an S3 error into what a person can act on.
pub fn s3_error<E>(
    operation: &'static str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    bucket: &str,
    folder: &str,
    key: Option<&str>,
) -> SourceError
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
{
    let code = e.as_service_error().and_then(ProvideErrorMetadata::code);
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    match code {
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken") => {
            SourceError::InvalidAccessKey {
                detail: describe_sdk(&e),
            }
        }
        Some("NoSuchBucket") => SourceError::NoSuchBucket {
            bucket: bucket.into(),
        },
        Some("PreconditionFailed") => SourceError::Changed {
            bucket: bucket.into(),
            key: key.unwrap_or_default().into(),
            etag: String::new(),
        },
        Some("NoSuchKey") => SourceError::NoSuchKey {
            bucket: bucket.into(),
            key: key.unwrap_or_default().into(),
        },
        Some("AccessDenied" | "AllAccessDisabled") => SourceError::AccessDenied {
            bucket: bucket.into(),
            folder: folder.into(),
            detail: describe_sdk(&e),
        },
        _ if status == 404 && key.is_none() => SourceError::NoSuchBucket {
            bucket: bucket.into(),
        },
        _ if status == 404 => SourceError::NoSuchKey {
            bucket: bucket.into(),
            key: key.unwrap_or_default().into(),
        },
        _ if status == 403 => SourceError::AccessDenied {
            bucket: bucket.into(),
            folder: folder.into(),
            detail: describe_sdk(&e),
        },
        _ => service_error("S3", operation, e).into(),
    }
}

impl SourceBucket {
    /// Streams an object; the body is read as it arrives.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<(aws_sdk_s3::primitives::ByteStream, u64), SourceError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", e, &self.bucket, &self.folder, Some(key)))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        Ok((out.body, size))
    }
}

impl SourceBucket {
    /// The object's size, ETag and the rest of what S3 keeps of it (a copy keeps it).
    async fn head_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, SourceError> {
        self.client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", e, &self.bucket, &self.folder, Some(key)))
    }

    /// The object's tags as they are now.
    async fn tags_of(&self, key: &str) -> Result<Vec<aws_sdk_s3::types::Tag>, SourceError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("GetObjectTagging", e, &self.bucket, &self.folder, Some(key)))?;
        Ok(out.tag_set().to_vec())
    }

    /// A copy of an object over [`CopyParts::single`]: a multipart upload whose parts
    /// copy ranges of it (each only while its ETag is `etag`), with the object's tags;
    /// aborted when a part fails, so no half-copied upload is left behind.
    async fn copy_in_parts(
        &self,
        key: &str,
        source: &str,
        etag: &str,
        head: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
        to: &str,
    ) -> Result<(), SourceError> {
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let tagging = self
            .tags_of(key)
            .await?
            .iter()
            .map(|t| {
                let enc = |v: &str| {
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                };
                format!("{}={}", enc(t.key()), enc(t.value()))
            })
            .collect::<Vec<_>>()
            .join("&");
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(to)
            .set_tagging((!tagging.is_empty()).then_some(tagging))
            // What CopyObject keeps of the object besides its bytes and tags.
            .set_content_type(head.content_type().map(str::to_string))
            .set_content_encoding(head.content_encoding().map(str::to_string))
            .set_metadata(head.metadata().cloned())
            .set_storage_class(head.storage_class().cloned())
            .set_server_side_encryption(head.server_side_encryption().cloned())
            .set_ssekms_key_id(head.ssekms_key_id().map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                s3_error(
                    "CreateMultipartUpload",
                    e,
                    &self.bucket,
                    &self.folder,
                    Some(key),
                )
            })?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let parts = self
            .copy_parts(key, source, etag, size, to, &upload_id)
            .await;
        let done = match parts {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(&upload_id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    s3_error(
                        "CompleteMultipartUpload",
                        e,
                        &self.bucket,
                        &self.folder,
                        Some(key),
                    )
                }),
            Err(e) => Err(e),
        };
        if done.is_err() {
            // Best effort: the bucket's lifecycle rule, if any, ends what this leaves.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        done
    }

    async fn copy_parts(
        &self,
        key: &str,
        source: &str,
        etag: &str,
        size: u64,
        to: &str,
        upload_id: &str,
    ) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, SourceError> {
        let part = self.copies.part.max(1);
        let mut parts = Vec::with_capacity(size.div_ceil(part) as usize);
        let mut from = 0;
        let mut number = 1;
        while from < size {
            let end = (from + part).min(size);
            let out = self
                .client
                .upload_part_copy()
                .bucket(&self.bucket)
                .key(to)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(source)
                .copy_source_range(format!("bytes={from}-{}", end - 1))
                .copy_source_if_match(format!("\"{etag}\""))
                .send()
                .await
                .map_err(|e| {
                    s3_error("UploadPartCopy", e, &self.bucket, &self.folder, Some(key))
                })?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        out.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_string),
                    )
                    .build(),
            );
            from = end;
            number += 1;
        }
        Ok(parts)
    }
}

#[async_trait]
impl SourceFolder for SourceBucket {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn list_pages(
        &self,
        pattern: &FilePattern,
        start_after: Option<String>,
        max_pages: Option<u32>,
    ) -> Result<Listing, SourceError> {
        let prefix = format!("{}/{}", self.folder, pattern.prefix);
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        let mut last: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                // The delimiter folds sub-folders into common prefixes we never read.
                .delimiter("/")
                .set_start_after(start_after.clone().filter(|_| token.is_none()))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectsV2", e, &self.bucket, &self.folder, None))?;
            listing.requests += 1;
            // The page's last name: its last key or past its last sub-folder (a sub-folder
            // `p/` holds only keys that start `p/`, all before `p/` and the greatest
            // character).
            let key = out
                .contents()
                .last()
                .and_then(|o| o.key())
                .map(str::to_string);
            let folder = out
                .common_prefixes()
                .last()
                .and_then(|p| p.prefix())
                .map(|p| format!("{p}\u{10FFFF}"));
            last = last.max(key.max(folder));
            for obj in out.contents() {
                let Some(key) = obj.key() else { continue };
                match pattern.match_key(key) {
                    Ok(file) => listing.files.push(ListedFile {
                        file,
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        etag: obj
                            .e_tag()
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                        last_modified: obj.last_modified().and_then(|t| {
                            chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                        }),
                    }),
                    Err(m) => listing.mismatched.push((key.to_string(), m)),
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => {
                    if max_pages.is_some_and(|m| listing.requests >= m) {
                        listing.resume_after = last.or(start_after);
                        break;
                    }
                    token = Some(t.to_string());
                }
                _ => break,
            }
        }
        listing.sort();
        Ok(listing)
    }

    async fn folder_exists(&self) -> Result<bool, SourceError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}/", self.folder))
            .max_keys(1)
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", e, &self.bucket, &self.folder, None))?;
        Ok(out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty())
    }

    async fn open(&self, key: &str) -> Result<(ObjectBody, u64), SourceError> {
        let (body, size) = self.get(key).await?;
        Ok((Box::pin(body.into_async_read()), size))
    }

    async fn open_range(
        &self,
        key: &str,
        etag: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<ObjectBody, SourceError> {
        let range = super::byte_range(from, to);
        let mut get = self.client.get_object().bucket(&self.bucket).key(key);
        if !etag.is_empty() {
            get = get.if_match(etag);
        }
        let out = get.range(range).send().await.map_err(|e| {
            match s3_error("GetObject", e, &self.bucket, &self.folder, Some(key)) {
                SourceError::Changed { bucket, key, .. } => SourceError::Changed {
                    bucket,
                    key,
                    etag: etag.to_string(),
                },
                other => other,
            }
        })?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn read_text(&self, key: &str, max: u64) -> Result<String, SourceError> {
        let (body, size) = self.get(key).await?;
        if size > max {
            return Err(SourceError::ObjectTooLarge {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                size,
                max,
            });
        }
        let bytes = body.collect().await.map_err(|e| {
            ServiceError::new("S3", "GetObject", ErrorClass::Retryable, e.to_string())
                .with_source(e)
        })?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SourceError::NotText {
            bucket: self.bucket.clone(),
            key: key.to_string(),
        })
    }

    async fn head(&self, key: &str) -> Result<(u64, String), SourceError> {
        let out = self.head_object(key).await?;
        Ok((
            out.content_length().unwrap_or(0).max(0) as u64,
            out.e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
        ))
    }

    fn cleanup(&self) -> &dyn SourceCleanup {
        self
    }
}

#[async_trait]
impl SourceCleanup for SourceBucket {
    async fn tag(&self, key: &str, tags: &[(String, String)]) -> Result<(), SourceError> {
        let mut set: Vec<aws_sdk_s3::types::Tag> = self
            .tags_of(key)
            .await?
            .into_iter()
            .filter(|t| !tags.iter().any(|(k, _)| k == t.key()))
            .collect();
        for (k, v) in tags {
            set.push(
                aws_sdk_s3::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(tag_error)?,
            );
        }
        if set.len() > MAX_OBJECT_TAGS {
            return Err(SourceError::Service(crate::error::ServiceError::new(
                "S3",
                "PutObjectTagging",
                crate::error::ErrorClass::Permanent,
                format!(
                    "s3://{}/{key} has {} tags of its own; S3 allows {MAX_OBJECT_TAGS} per object",
                    self.bucket,
                    set.len() - tags.len()
                ),
            )));
        }
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(tag_error)?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| s3_error("PutObjectTagging", e, &self.bucket, &self.folder, Some(key)))?;
        Ok(())
    }

    async fn copy(&self, key: &str, etag: &str, to: &str) -> Result<(), SourceError> {
        // CopySource is `bucket/key`, URL-encoded (keys may hold spaces and more).
        const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(key, KEEP)
        );
        let head = self.head_object(key).await?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        if size > self.copies.single {
            return self.copy_in_parts(key, &source, etag, &head, to).await;
        }
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .copy_source_if_match(format!("\"{etag}\""))
            .tagging_directive(aws_sdk_s3::types::TaggingDirective::Copy)
            .send()
            .await
            .map_err(|e| s3_error("CopyObject", e, &self.bucket, &self.folder, Some(key)))?;
        Ok(())
    }

    async fn delete(&self, key: &str, etag: &str) -> Result<(), SourceError> {
        let mut delete = self.client.delete_object().bucket(&self.bucket).key(key);
        if !etag.is_empty() {
            delete = delete.if_match(format!("\"{etag}\""));
        }
        delete
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", e, &self.bucket, &self.folder, Some(key)))?;
        Ok(())
    }
}

#[async_trait]
impl ObjectSource for SourceAccess {
    async fn connect(
        &self,
        source: &Source,
        import_id: &str,
    ) -> Result<Box<dyn SourceFolder>, SourceError> {
        Ok(Box::new(self.reach(source, import_id).await?))
    }
}

#[async_trait]
impl Secrets for SourceAccess {
    async fn secret(&self, r: &SecretRef, import_id: &str) -> Result<String, SourceError> {
        let (id, key) = r.parts();
        let err = |reason: String| SourceError::Secret {
            secret: id.to_string(),
            reason,
        };
        // The binding is checked before the value is read.
        let described = self
            .secrets
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| secret_error(id, "DescribeSecret", e))?;
        let tag = described
            .tags()
            .iter()
            .find(|t| t.key() == Some(SECRET_TAG))
            .and_then(|t| t.value());
        check_secret_tag(id, tag, import_id)?;
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| secret_error(id, "GetSecretValue", e))?;
        let value = out
            .secret_string()
            .ok_or_else(|| err("the secret has no string value".into()))?;
        match key {
            None => Ok(value.to_string()),
            Some(k) => {
                let json: serde_json::Value = serde_json::from_str(value)
                    .map_err(|_| err(format!("`#{k}` was asked for but the secret is not JSON")))?;
                json.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("the JSON secret has no string key `{k}`")))
            }
        }
    }
}

/// S3's most tags on one object.
const MAX_OBJECT_TAGS: usize = 10;

/// A tag the SDK would not build (an empty key): nothing a retry can change.
fn tag_error(e: aws_sdk_s3::error::BuildError) -> SourceError {
    SourceError::Service(crate::error::ServiceError::new(
        "S3",
        "PutObjectTagging",
        crate::error::ErrorClass::Permanent,
        e.to_string(),
    ))
}
