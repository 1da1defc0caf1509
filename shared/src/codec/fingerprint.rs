//! Content fingerprints: the SHA-256 of a file's plaintext, taken as the import reads
//! it (no extra pass), so a file whose content an import already imported under
//! another name can be told apart. A file read across invocations carries the hash's
//! state in its checkpoint: `sha2`'s hasher cannot be saved, so this one keeps its own
//! state over `sha2::compress256`.

use std::io::Read;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// A SHA-256 in progress, whose state a checkpoint can carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    state: [u32; 8],
    /// Bytes not yet compressed (fewer than a block), hex in a checkpoint.
    #[serde(with = "hex_bytes")]
    pending: Vec<u8>,
    /// Bytes hashed so far.
    length: u64,
}

const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

const BLOCK: usize = 64;

impl Default for Digest {
    fn default() -> Self {
        Self {
            state: INITIAL,
            pending: Vec::with_capacity(BLOCK),
            length: 0,
        }
    }
}

impl Digest {
    pub fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (BLOCK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < BLOCK {
                return;
            }
            let block = sha2::digest::generic_array::GenericArray::clone_from_slice(&self.pending);
            sha2::compress256(&mut self.state, &[block]);
            self.pending.clear();
        }
        let whole = data.len() - data.len() % BLOCK;
        // Block by block, in place: no copy of the data.
        for block in data[..whole].chunks_exact(BLOCK) {
            let block = sha2::digest::generic_array::GenericArray::from_slice(block);
            sha2::compress256(&mut self.state, std::slice::from_ref(block));
        }
        self.pending.extend_from_slice(&data[whole..]);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The hash of everything so far, as lowercase hex (the state is left as it is).
    pub fn hex(&self) -> String {
        let mut tail = self.pending.clone();
        tail.push(0x80);
        while tail.len() % BLOCK != BLOCK - 8 {
            tail.push(0);
        }
        tail.extend_from_slice(&(self.length.wrapping_mul(8)).to_be_bytes());
        let mut state = self.state;
        let blocks: Vec<_> = tail
            .chunks_exact(BLOCK)
            .map(sha2::digest::generic_array::GenericArray::clone_from_slice)
            .collect();
        sha2::compress256(&mut state, &blocks);
        state.iter().map(|w| format!("{w:08x}")).collect()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 || text.len() >= 2 * super::BLOCK {
            return Err(serde::de::Error::custom("not a digest's pending bytes"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

/// Where a read's fingerprint starts: from nothing, or from a checkpoint's digest
/// with some bytes of the resumed stream already in it.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub digest: Digest,
    /// Bytes at the start of the stream the digest already holds (a ranged resume
    /// reads the header again, and the bytes read ahead of its checkpoint).
    pub skip: u64,
}

/// A digest being taken as bytes pass, shared with whoever saves it in a checkpoint.
#[derive(Debug, Default)]
pub struct Progress {
    pub digest: Digest,
    skip: u64,
    /// The stream ended: the digest holds the whole plaintext.
    pub at_end: bool,
}

pub type Shared = Arc<Mutex<Progress>>;

/// Hashes what passes through it.
pub struct Hashing<R> {
    inner: R,
    progress: Shared,
}

impl<R> Hashing<R> {
    pub fn new(inner: R, from: Resume) -> (Self, Shared) {
        let progress = Arc::new(Mutex::new(Progress {
            digest: from.digest,
            skip: from.skip,
            at_end: false,
        }));
        (
            Self {
                inner,
                progress: progress.clone(),
            },
            progress,
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 && !buf.is_empty() {
            p.at_end = true;
            return Ok(0);
        }
        let skip = usize::try_from(p.skip).unwrap_or(usize::MAX).min(n);
        p.skip -= skip as u64;
        p.digest.update(&buf[skip..n]);
        Ok(n)
    }
}

/// The digest so far, for a checkpoint.
pub fn snapshot(progress: &Shared) -> Digest {
    progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .digest
        .clone()
}

/// The fingerprint, if the stream was read to its end.
pub fn finished(progress: &Shared) -> Option<String> {
    let p = progress.lock().unwrap_or_else(|e| e.into_inner());
    p.at_end.then(|| p.digest.hex())
}

/// Hashes a whole stream (a file whose fingerprint is needed before its rows are).
pub fn of_stream(input: impl Read) -> std::io::Result<String> {
    let (mut hashing, progress) = Hashing::new(input, Resume::default());
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    // `copy` stops at the end of the stream, which the wrapper saw.
    Ok(snapshot(&progress).hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::Digest as _;

    fn reference(data: &[u8]) -> String {
        sha2::Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            Digest::default().hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut d = Digest::default();
        d.update(b"abc");
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    proptest! {
        // Any split of any bytes into updates, with the state saved and restored
        // (through JSON, as a checkpoint carries it) between any two, hashes as sha2.
        #[test]
        fn matches_sha2_through_saves(data in proptest::collection::vec(any::<u8>(), 0..700),
                                      cuts in proptest::collection::vec(0usize..700, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut d = Digest::default();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                d.update(&data[at..c]);
                at = c;
                d = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            }
            prop_assert_eq!(d.len(), data.len() as u64);
            prop_assert_eq!(d.hex(), reference(&data));
        }

        // A resumed stream that repeats bytes the digest holds skips them.
        #[test]
        fn a_resume_skips_what_the_digest_holds(data in proptest::collection::vec(any::<u8>(), 1..2000),
                                                 read in 0usize..2000, back in 0usize..2000) {
            let read = read.min(data.len());
            let restart = read.saturating_sub(back);
            let (mut first, p) = Hashing::new(&data[..read], Resume::default());
            std::io::copy(&mut first, &mut std::io::sink()).unwrap();
            let from = Resume { digest: snapshot(&p), skip: (read - restart) as u64 };
            let (mut rest, p) = Hashing::new(&data[restart..], from);
            std::io::copy(&mut rest, &mut std::io::sink()).unwrap();
            prop_assert_eq!(finished(&p), Some(reference(&data)));
        }
    }

    #[test]
    fn an_unfinished_stream_has_no_fingerprint() {
        let data = b"ID,Age\nu1,30\n";
        let (mut h, p) = Hashing::new(&data[..], Resume::default());
        let mut buf = [0u8; 4];
        h.read_exact(&mut buf).unwrap();
        assert_eq!(finished(&p), None);
        assert_eq!(of_stream(&data[..]).unwrap(), reference(data));
    }
}
