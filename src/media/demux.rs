//! MP4 demuxing with `mp4parse` (fallible allocation, written for hostile input): the first video track, its H.264
//! parameter sets, its samples' byte ranges and presentation times, and its display rotation.
use std::io::Cursor;

use mp4parse::unstable::{create_sample_table, CheckedInteger};
use mp4parse::{CodecType, SampleEntry, TrackType, VideoCodecSpecific};

use super::{check_size, VideoError, VideoLimits};

/// One coded frame: where it is in the file, and when it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub offset: usize,
    pub size: usize,
    /// Presentation time in milliseconds since the first shown frame.
    pub pts_ms: u32,
}

/// What decoding needs from the container.
#[derive(Debug, Clone)]
pub struct Demuxed {
    /// In decoding order.
    pub samples: Vec<Sample>,
    /// SPS and PPS NAL units from the `avcC` box.
    pub parameter_sets: Vec<Vec<u8>>,
    /// Bytes of each NAL unit's length prefix in the samples (1, 2 or 4).
    pub nal_length_size: usize,
    pub duration_ms: u32,
    /// Clockwise rotation to show the picture upright: 0, 90, 180 or 270.
    pub rotation: u16,
    /// Picture size declared by the sample entry.
    pub width: u32,
    pub height: u32,
}

/// Box types that may start an ISO base media file.
const TOP_LEVEL: [&[u8; 4]; 9] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"styp", b"uuid",
];

fn looks_like_mp4(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && TOP_LEVEL.iter().any(|t| &bytes[4..8] == *t)
}

/// The clockwise rotation of a track's display matrix (16.16 fixed point), snapped to quarter turns.
pub fn rotation_of(a: i32, b: i32, c: i32, d: i32) -> u16 {
    match (a.signum(), b.signum(), c.signum(), d.signum()) {
        (0, 1, -1, 0) => 90,
        (-1, 0, 0, -1) => 180,
        (0, -1, 1, 0) => 270,
        _ => 0,
    }
}

fn codec_name(bytes: &[u8], codec: Option<CodecType>) -> String {
    let has = |fourcc: &[u8]| bytes.windows(4).any(|w| w == fourcc);
    match codec {
        Some(CodecType::AV1) => "AV1".into(),
        Some(CodecType::VP9) => "VP9".into(),
        Some(CodecType::VP8) => "VP8".into(),
        Some(CodecType::MP4V) => "MPEG-4 Part 2".into(),
        Some(CodecType::H263) => "H.263".into(),
        Some(CodecType::EncryptedVideo) => "encrypted video".into(),
        _ if has(b"hvcC") || has(b"hvc1") || has(b"hev1") => "HEVC (H.265)".into(),
        _ => "an unknown codec".into(),
    }
}

fn ms(ticks: i64, timescale: u64) -> Option<u32> {
    if timescale == 0 {
        return None;
    }
    let v = i128::from(ticks) * 1000 / i128::from(timescale);
    u32::try_from(v.max(0)).ok()
}

/// Parses the container and checks everything that can be checked before decoding.
pub fn demux(bytes: &[u8], limits: &VideoLimits) -> Result<Demuxed, VideoError> {
    if !looks_like_mp4(bytes) {
        return Err(VideoError::NotMp4("no ISO media box at the start".into()));
    }
    let starts_with_ftyp = &bytes[4..8] == b"ftyp";
    let ctx = mp4parse::read_mp4(&mut Cursor::new(bytes)).map_err(|e| match e {
        mp4parse::Error::MoovMissing if !starts_with_ftyp => {
            VideoError::NotMp4("no movie header".into())
        }
        mp4parse::Error::MoovMissing => {
            VideoError::Corrupt("no movie header (is the file truncated?)".into())
        }
        mp4parse::Error::UnexpectedEOF => VideoError::Corrupt("the file is truncated".into()),
        other => VideoError::Corrupt(format!("cannot parse the container: {other}")),
    })?;
    let track = ctx
        .tracks
        .iter()
        .find(|t| t.track_type == TrackType::Video)
        .ok_or(VideoError::NoVideoTrack)?;
    let entry = track
        .stsd
        .as_ref()
        .and_then(|s| s.descriptions.first())
        .ok_or_else(|| VideoError::Corrupt("the video track has no sample description".into()))?;
    let (avcc, width, height) = match entry {
        SampleEntry::Video(v) => match (&v.codec_type, &v.codec_specific) {
            (CodecType::H264, VideoCodecSpecific::AVCConfig(avcc)) => {
                (avcc, u32::from(v.width), u32::from(v.height))
            }
            (c, _) => {
                return Err(VideoError::UnsupportedCodec(codec_name(bytes, Some(*c))));
            }
        },
        _ => return Err(VideoError::UnsupportedCodec(codec_name(bytes, None))),
    };
    check_size(width, height, limits)?;
    let (parameter_sets, nal_length_size) = parse_avcc(avcc)?;
    let timescale = track
        .timescale
        .map(|t| t.0)
        .filter(|&t| t > 0)
        .ok_or_else(|| VideoError::Corrupt("the video track has no timescale".into()))?;

    // The sample count follows from the chunk tables before the sample table is built: refuse long streams (and
    // tables claiming billions of samples) before allocating anything for them.
    let count = declared_samples(track);
    if count > limits.max_frames as u64 {
        return Err(VideoError::TooManyFrames {
            frames: usize::try_from(count).unwrap_or(usize::MAX),
            max: limits.max_frames,
        });
    }
    let table = create_sample_table(track, CheckedInteger(0)).ok_or_else(|| {
        VideoError::Corrupt("the video track's sample table is inconsistent".into())
    })?;
    if table.is_empty() {
        return Err(VideoError::Corrupt(
            "the video track has no samples (fragmented MP4 is not supported)".into(),
        ));
    }
    if table.len() > limits.max_frames {
        return Err(VideoError::TooManyFrames {
            frames: table.len(),
            max: limits.max_frames,
        });
    }
    let first = table
        .iter()
        .map(|s| s.start_composition.0)
        .min()
        .unwrap_or(0);
    let last = table.iter().map(|s| s.end_composition.0).max().unwrap_or(0);
    let duration_ms = ms(last.saturating_sub(first), timescale)
        .ok_or_else(|| VideoError::Corrupt("the video track's timing is invalid".into()))?;
    if duration_ms > limits.max_duration_ms {
        return Err(VideoError::TooLong {
            ms: duration_ms,
            max: limits.max_duration_ms,
        });
    }
    if duration_ms < limits.min_duration_ms {
        return Err(VideoError::TooShort {
            ms: duration_ms,
            min: limits.min_duration_ms,
        });
    }
    let mut samples = Vec::with_capacity(table.len());
    for s in table.iter() {
        let (start, end) = (s.start_offset.0, s.end_offset.0);
        let offset = usize::try_from(start).ok();
        let size = end.checked_sub(start).and_then(|n| usize::try_from(n).ok());
        let (Some(offset), Some(size)) = (offset, size) else {
            return Err(VideoError::Corrupt(
                "a sample's byte range is invalid".into(),
            ));
        };
        if offset.checked_add(size).is_none_or(|e| e > bytes.len()) {
            return Err(VideoError::Corrupt(
                "a sample lies outside the file (is the file truncated?)".into(),
            ));
        }
        let pts_ms = ms(s.start_composition.0.saturating_sub(first), timescale)
            .ok_or_else(|| VideoError::Corrupt("a sample's time is invalid".into()))?;
        samples.push(Sample {
            offset,
            size,
            pts_ms,
        });
    }
    let rotation = track
        .tkhd
        .as_ref()
        .map(|t| rotation_of(t.matrix.a, t.matrix.b, t.matrix.c, t.matrix.d))
        .unwrap_or(0);
    Ok(Demuxed {
        samples,
        parameter_sets,
        nal_length_size,
        duration_ms,
        rotation,
        width,
        height,
    })
}

/// Samples the chunk tables declare (`stsc` runs over the `stco` chunks), saturating.
fn declared_samples(track: &mp4parse::Track) -> u64 {
    let (Some(stsc), Some(stco)) = (&track.stsc, &track.stco) else {
        return 0;
    };
    let chunks = stco.offsets.len() as u64;
    let runs = stsc.samples.as_slice();
    let mut total = 0u64;
    for (i, run) in runs.iter().enumerate() {
        let first = u64::from(run.first_chunk.max(1));
        let end = runs.get(i + 1).map_or(chunks + 1, |next| {
            u64::from(next.first_chunk).min(chunks + 1)
        });
        let n = end.saturating_sub(first);
        total = total.saturating_add(n.saturating_mul(u64::from(run.samples_per_chunk)));
    }
    total
}

/// The SPS and PPS units and the NAL length size of an `AVCDecoderConfigurationRecord`.
pub fn parse_avcc(avcc: &[u8]) -> Result<(Vec<Vec<u8>>, usize), VideoError> {
    let bad = || VideoError::Corrupt("the H.264 configuration record is invalid".into());
    if avcc.len() < 7 || avcc[0] != 1 {
        return Err(bad());
    }
    let nal_length_size = usize::from(avcc[4] & 0x03) + 1;
    if nal_length_size == 3 {
        return Err(bad());
    }
    let mut sets = Vec::new();
    let mut pos = 5;
    for kind in 0..2 {
        let count = if kind == 0 {
            usize::from(*avcc.get(pos).ok_or_else(bad)? & 0x1f)
        } else {
            usize::from(*avcc.get(pos).ok_or_else(bad)?)
        };
        pos += 1;
        for _ in 0..count {
            let len_bytes = avcc.get(pos..pos + 2).ok_or_else(bad)?;
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            pos += 2;
            sets.push(avcc.get(pos..pos + len).ok_or_else(bad)?.to_vec());
            pos += len;
        }
    }
    if sets.is_empty() {
        return Err(bad());
    }
    Ok((sets, nal_length_size))
}

/// Rewrites one sample's length-prefixed NAL units as an Annex B byte stream (start codes) into `out`.
pub fn avcc_to_annexb(
    data: &[u8],
    nal_length_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), VideoError> {
    let mut pos = 0;
    while pos < data.len() {
        let prefix = data
            .get(pos..pos + nal_length_size)
            .ok_or_else(|| VideoError::Corrupt("a NAL unit's length is cut off".into()))?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        pos += nal_length_size;
        let nal = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| VideoError::Corrupt("a NAL unit runs past its sample".into()))?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        pos += len;
    }
    Ok(())
}
