//! Short face videos decoded in-process: MP4 demuxed by a pure-Rust parser (`mp4parse`), H.264 decoded by Cisco's
//! OpenH264 (built from bundled source by the `openh264` crate), frames sampled at a target rate and downscaled into
//! the `RgbImage`s the face engine takes. Every limit is checked before the expensive step it protects: bytes before
//! parsing; codec, dimensions, duration and sample count before decoding; decoded dimensions again on the first
//! picture. Only the sampled frames are kept, already downscaled.
mod demux;

use std::time::Instant;

use image::RgbImage;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

pub use demux::{Demuxed, Sample};

/// What a client's video may be, and how it is sampled.
#[derive(Debug, Clone, Copy)]
pub struct VideoLimits {
    /// Largest upload, in bytes.
    pub max_bytes: usize,
    /// Shortest video, in milliseconds.
    pub min_duration_ms: u32,
    /// Longest video, in milliseconds.
    pub max_duration_ms: u32,
    /// Longest side of the coded picture, in pixels.
    pub max_long_side: u32,
    /// Shortest side of the coded picture, in pixels (1920×1080 in either orientation).
    pub max_short_side: u32,
    /// Most video samples (coded frames) decoded: bounds the decoding time whatever the frame rate claims.
    pub max_frames: usize,
    /// Frames kept per second of video.
    pub sample_fps: u32,
    /// Kept frames are downscaled to at most this many pixels on their long side.
    pub max_output_side: u32,
}

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_bytes: 20 * 1024 * 1024,
            min_duration_ms: 1000,
            max_duration_ms: 20_000,
            max_long_side: 1920,
            max_short_side: 1080,
            // 20 s at 60 fps.
            max_frames: 1200,
            sample_fps: 8,
            max_output_side: 640,
        }
    }
}

/// Why a video was refused. Each has a stable code ([`VideoError::code`]) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    #[error("the video is larger than {max} bytes")]
    TooManyBytes { max: usize },
    #[error("not an MP4 file ({0})")]
    NotMp4(String),
    #[error("the MP4 file has no video track")]
    NoVideoTrack,
    #[error("the video is {0}; only H.264 (AVC) is accepted")]
    UnsupportedCodec(String),
    #[error("the video lasts {ms} ms, less than the {min} ms needed")]
    TooShort { ms: u32, min: u32 },
    #[error("the video lasts {ms} ms, more than the {max} ms allowed")]
    TooLong { ms: u32, max: u32 },
    #[error("the video is {width}x{height} pixels, more than {max_long}x{max_short} allowed")]
    TooLarge {
        width: u32,
        height: u32,
        max_long: u32,
        max_short: u32,
    },
    #[error("the video has {frames} frames, more than the {max} allowed")]
    TooManyFrames { frames: usize, max: usize },
    #[error("the video stream is corrupt: {0}")]
    Corrupt(String),
}

impl VideoError {
    /// A stable code for the wire and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            VideoError::TooManyBytes { .. } => "VIDEO_TOO_MANY_BYTES",
            VideoError::NotMp4(_) => "VIDEO_NOT_MP4",
            VideoError::NoVideoTrack => "VIDEO_NO_VIDEO_TRACK",
            VideoError::UnsupportedCodec(_) => "VIDEO_UNSUPPORTED_CODEC",
            VideoError::TooShort { .. } => "VIDEO_TOO_SHORT",
            VideoError::TooLong { .. } => "VIDEO_TOO_LONG",
            VideoError::TooLarge { .. } => "VIDEO_TOO_LARGE",
            VideoError::TooManyFrames { .. } => "VIDEO_TOO_MANY_FRAMES",
            VideoError::Corrupt(_) => "VIDEO_CORRUPT",
        }
    }

    /// Every code, for documentation and tests.
    pub const CODES: [&'static str; 9] = [
        "VIDEO_TOO_MANY_BYTES",
        "VIDEO_NOT_MP4",
        "VIDEO_NO_VIDEO_TRACK",
        "VIDEO_UNSUPPORTED_CODEC",
        "VIDEO_TOO_SHORT",
        "VIDEO_TOO_LONG",
        "VIDEO_TOO_LARGE",
        "VIDEO_TOO_MANY_FRAMES",
        "VIDEO_CORRUPT",
    ];

    /// What a person is told (Chinese, English): what to record instead.
    pub fn messages(&self) -> (&'static str, &'static str) {
        match self {
            VideoError::TooManyBytes { .. } => (
                "视频文件过大，请录制更短或分辨率更低的视频。",
                "The video file is too large. Record a shorter or lower-resolution video.",
            ),
            VideoError::NotMp4(_) | VideoError::NoVideoTrack => (
                "无法识别视频文件，请上传 MP4 格式的视频。",
                "The file is not a video we can read. Upload an MP4 video.",
            ),
            VideoError::UnsupportedCodec(_) => (
                "视频编码不受支持，请使用 H.264 编码录制。",
                "The video's encoding is not supported. Record it with H.264.",
            ),
            VideoError::TooShort { .. } => (
                "视频太短，请录制至少 1 秒。",
                "The video is too short. Record at least one second.",
            ),
            VideoError::TooLong { .. } | VideoError::TooManyFrames { .. } => (
                "视频太长，请录制 20 秒以内的视频。",
                "The video is too long. Record no more than 20 seconds.",
            ),
            VideoError::TooLarge { .. } => (
                "视频分辨率过高，请使用 1080p 或更低的分辨率。",
                "The video's resolution is too high. Use 1080p or lower.",
            ),
            VideoError::Corrupt(_) => (
                "视频文件已损坏，请重新录制。",
                "The video file is damaged. Please record it again.",
            ),
        }
    }
}

/// One kept frame.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Milliseconds since the first frame of the video (presentation time).
    pub t_ms: u32,
    /// The frame, upright (rotation metadata applied), at most `max_output_side` pixels on its long side.
    pub image: RgbImage,
}

/// A decoded, sampled video.
#[derive(Debug, Clone)]
pub struct SampledVideo {
    pub frames: Vec<SampledFrame>,
    /// Duration from the track's sample table, in milliseconds.
    pub duration_ms: u32,
    /// Coded picture size, as decoded (before rotation).
    pub width: u32,
    pub height: u32,
    /// Clockwise rotation applied from the track's display matrix: 0, 90, 180 or 270.
    pub rotation: u16,
    /// Coded frames fed to the decoder.
    pub decoded_frames: usize,
    /// Time spent demuxing and decoding, in milliseconds.
    pub decode_ms: u64,
}

/// Demuxes and decodes an MP4/H.264 video in memory, keeping frames at `limits.sample_fps`.
///
/// Never panics on client input: the parser is fallible, the decoder is OpenH264 (fuzzed upstream), and a panic in
/// either crate's Rust code is caught and reported as [`VideoError::Corrupt`].
pub fn decode_video(bytes: &[u8], limits: &VideoLimits) -> Result<SampledVideo, VideoError> {
    let started = Instant::now();
    if bytes.len() > limits.max_bytes {
        return Err(VideoError::TooManyBytes {
            max: limits.max_bytes,
        });
    }
    let mut out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let demuxed = demux::demux(bytes, limits)?;
        decode_samples(bytes, &demuxed, limits)
    }))
    .map_err(|_| VideoError::Corrupt("the demuxer or decoder failed on this stream".into()))??;
    out.decode_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// Observes every kept frame with the face engine, in order (each frame's surroundings compared with the previous
/// kept frame's): the input of [`crate::certify::video::check_sequence`]. CPU-bound: run it off the async runtime.
pub fn observe(
    engine: &dyn crate::face::engine::FaceEngine,
    video: &SampledVideo,
) -> Result<Vec<crate::face::liveness::Observation>, crate::face::runtime::RuntimeError> {
    let mut prev = None;
    let mut out = Vec::with_capacity(video.frames.len());
    for f in &video.frames {
        let (o, thumb) = crate::face::observe::observe(engine, &f.image, f.t_ms, prev.as_ref())?;
        prev = Some(thumb);
        out.push(o);
    }
    Ok(out)
}

/// A YUV 4:2:0 picture converted to RGB and downscaled to at most `max_side` on its long side.
fn to_rgb(yuv: &DecodedYUV<'_>, max_side: u32) -> Option<RgbImage> {
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let mut buf = vec![0u8; w * h * 3];
    yuv.write_rgb8(&mut buf);
    let img = RgbImage::from_raw(w as u32, h as u32, buf)?;
    let long = w.max(h) as u32;
    if long <= max_side {
        return Some(img);
    }
    let scale = max_side as f32 / long as f32;
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    Some(image::imageops::resize(
        &img,
        nw,
        nh,
        image::imageops::FilterType::Triangle,
    ))
}

fn rotate(img: RgbImage, rotation: u16) -> RgbImage {
    match rotation {
        90 => image::imageops::rotate90(&img),
        180 => image::imageops::rotate180(&img),
        270 => image::imageops::rotate270(&img),
        _ => img,
    }
}

fn check_size(w: u32, h: u32, limits: &VideoLimits) -> Result<(), VideoError> {
    if w.max(h) > limits.max_long_side || w.min(h) > limits.max_short_side {
        return Err(VideoError::TooLarge {
            width: w,
            height: h,
            max_long: limits.max_long_side,
            max_short: limits.max_short_side,
        });
    }
    Ok(())
}

/// Keeps frames at the target rate: the k-th picture out of the decoder (which emits in presentation order) has
/// the k-th smallest presentation time.
struct Sampler {
    times_ms: Vec<u32>,
    next_ms: u32,
    step_ms: u32,
    emitted: usize,
    limits: VideoLimits,
    rotation: u16,
    frames: Vec<SampledFrame>,
    size: Option<(u32, u32)>,
}

impl Sampler {
    fn take(&mut self, yuv: &DecodedYUV<'_>) -> Result<(), VideoError> {
        let (w, h) = yuv.dimensions();
        let (w, h) = (w as u32, h as u32);
        check_size(w, h, &self.limits)?;
        self.size.get_or_insert((w, h));
        let k = self.emitted;
        self.emitted += 1;
        let Some(&t) = self.times_ms.get(k) else {
            return Ok(());
        };
        if t < self.next_ms {
            return Ok(());
        }
        while self.next_ms <= t {
            self.next_ms = self.next_ms.saturating_add(self.step_ms);
        }
        if let Some(img) = to_rgb(yuv, self.limits.max_output_side) {
            self.frames.push(SampledFrame {
                t_ms: t,
                image: rotate(img, self.rotation),
            });
        }
        Ok(())
    }
}

fn decode_samples(
    bytes: &[u8],
    d: &Demuxed,
    limits: &VideoLimits,
) -> Result<SampledVideo, VideoError> {
    let corrupt = |e: openh264::Error| VideoError::Corrupt(e.to_string());
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| VideoError::Corrupt(format!("decoder: {e}")))?;
    let mut times: Vec<u32> = d.samples.iter().map(|s| s.pts_ms).collect();
    times.sort_unstable();
    let mut sampler = Sampler {
        times_ms: times,
        next_ms: 0,
        step_ms: (1000 / limits.sample_fps.clamp(1, 60)).max(1),
        emitted: 0,
        limits: *limits,
        rotation: d.rotation,
        frames: Vec::new(),
        size: None,
    };
    // Parameter sets first, in Annex B form.
    let mut annexb = Vec::with_capacity(1 << 16);
    for ps in &d.parameter_sets {
        annexb.extend_from_slice(&[0, 0, 0, 1]);
        annexb.extend_from_slice(ps);
    }
    if let Some(pic) = decoder.decode(&annexb).map_err(corrupt)? {
        sampler.take(&pic)?;
    }
    let mut errors = 0usize;
    let mut decoded = 0usize;
    for s in &d.samples {
        annexb.clear();
        let data = bytes
            .get(s.offset..s.offset.saturating_add(s.size))
            .ok_or_else(|| VideoError::Corrupt("a sample lies outside the file".into()))?;
        demux::avcc_to_annexb(data, d.nal_length_size, &mut annexb)?;
        decoded += 1;
        match decoder.decode(&annexb) {
            Ok(Some(pic)) => sampler.take(&pic)?,
            Ok(None) => {}
            // A damaged frame is skipped (the decoder conceals what it can); a stream of them is refused.
            Err(_) => errors += 1,
        }
    }
    for pic in decoder.flush_remaining().map_err(corrupt)? {
        sampler.take(&pic)?;
    }
    if errors > decoded / 4 || sampler.frames.is_empty() {
        return Err(VideoError::Corrupt(format!(
            "{errors} of {decoded} frames could not be decoded, {} pictures came out",
            sampler.emitted
        )));
    }
    let (width, height) = sampler.size.unwrap_or((0, 0));
    Ok(SampledVideo {
        frames: sampler.frames,
        duration_ms: d.duration_ms,
        width,
        height,
        rotation: d.rotation,
        decoded_frames: decoded,
        decode_ms: 0,
    })
}

#[cfg(test)]
mod tests;
