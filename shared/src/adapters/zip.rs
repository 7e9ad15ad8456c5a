//! A ZIP archive written to S3 while it is made (a company's export: `usecases::offboarding`):
//! multipart parts of 8 MB, so memory stays bounded whatever the archive's size.

use time::OffsetDateTime;

/// A ZIP written to S3 as it goes (stored entries, UTF-8 names; no ZIP64: at most 65,535 entries
/// and 4 GiB), in parts of [`Zip::PART`].
pub struct Zip<'a> {
    blobs: &'a super::s3::Blobs,
    key: &'a str,
    upload: &'a str,
    etags: Vec<String>,
    buffer: Vec<u8>,
    offset: u64,
    central: Vec<u8>,
    entries: u32,
    dos: (u16, u16),
}

impl<'a> Zip<'a> {
    const PART: usize = 8 << 20;

    pub fn new(blobs: &'a super::s3::Blobs, key: &'a str, upload: &'a str, now: OffsetDateTime) -> Self {
        let time = (u16::from(now.hour()) << 11) | (u16::from(now.minute()) << 5) | (u16::from(now.second()) / 2);
        let year = u16::try_from(now.year() - 1980).unwrap_or(0).min(127);
        let date = (year << 9) | (u16::from(u8::from(now.month())) << 5) | u16::from(now.day());
        Zip {
            blobs,
            key,
            upload,
            etags: Vec::new(),
            buffer: Vec::new(),
            offset: 0,
            central: Vec::new(),
            entries: 0,
            dos: (time, date),
        }
    }

    /// One file (stored, with its CRC-32); full parts go to S3 as they fill.
    pub async fn add(&mut self, name: &str, data: Vec<u8>) -> Result<(), String> {
        let size = u32::try_from(data.len()).map_err(|_| "a file too large for the ZIP".to_owned())?;
        let offset = u32::try_from(self.offset).map_err(|_| "the export is over 4 GiB (no ZIP64)".to_owned())?;
        if self.entries >= u32::from(u16::MAX) {
            return Err("the export has over 65,535 files (no ZIP64)".into());
        }
        let crc = crc32fast::hash(&data);
        let name_len = u16::try_from(name.len()).map_err(|_| "a file name too long".to_owned())?;
        let mut header = Vec::with_capacity(30 + name.len());
        header.extend(0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0x0800, 0, self.dos.0, self.dos.1] {
            header.extend(v.to_le_bytes());
        }
        for v in [crc, size, size] {
            header.extend(v.to_le_bytes());
        }
        header.extend(name_len.to_le_bytes());
        header.extend(0u16.to_le_bytes());
        header.extend(name.as_bytes());
        self.central.extend(0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0x0800, 0, self.dos.0, self.dos.1] {
            self.central.extend(v.to_le_bytes());
        }
        for v in [crc, size, size] {
            self.central.extend(v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            self.central.extend(v.to_le_bytes());
        }
        self.central.extend(0u32.to_le_bytes());
        self.central.extend(offset.to_le_bytes());
        self.central.extend(name.as_bytes());
        self.entries += 1;
        self.offset += (header.len() + data.len()) as u64;
        self.buffer.extend(header);
        self.buffer.extend(data);
        while self.buffer.len() >= Self::PART {
            let rest = self.buffer.split_off(Self::PART);
            let part = std::mem::replace(&mut self.buffer, rest);
            self.send(part).await?;
        }
        Ok(())
    }

    async fn send(&mut self, part: Vec<u8>) -> Result<(), String> {
        let n = i32::try_from(self.etags.len() + 1).unwrap_or(i32::MAX);
        let etag = self.blobs.upload_part(self.key, self.upload, n, part).await.map_err(|e| e.to_string())?;
        self.etags.push(etag);
        Ok(())
    }

    /// The directory and the end record, the last part, and the upload completed.
    pub async fn finish(mut self) -> Result<(), String> {
        let offset = u32::try_from(self.offset).map_err(|_| "the export is over 4 GiB (no ZIP64)".to_owned())?;
        let size = u32::try_from(self.central.len()).map_err(|_| "the ZIP's directory is too large".to_owned())?;
        let entries = u16::try_from(self.entries).unwrap_or(u16::MAX);
        let central = std::mem::take(&mut self.central);
        self.buffer.extend(central);
        self.buffer.extend(0x0605_4b50u32.to_le_bytes());
        for v in [0u16, 0, entries, entries] {
            self.buffer.extend(v.to_le_bytes());
        }
        self.buffer.extend(size.to_le_bytes());
        self.buffer.extend(offset.to_le_bytes());
        self.buffer.extend(0u16.to_le_bytes());
        let last = std::mem::take(&mut self.buffer);
        self.send(last).await?;
        self.blobs.finish_upload(self.key, self.upload, &self.etags).await.map_err(|e| e.to_string())
    }
}
