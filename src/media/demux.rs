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
    check_boxes(bytes, 0, b"", None)?;
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
    debug_assert_eq!(
        table.len() as u64,
        count,
        "declared_samples is out of step with mp4parse"
    );
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

/// Where the child boxes of a box start in its body, for the boxes on the paths `mp4parse` reads: containers (the
/// metadata list and its items included), and the sample entries inside `stsd`, which it reads by the track's
/// handler type.
fn children_at(kind: &[u8], body: &[u8], parent: &[u8], handler: Option<[u8; 4]>) -> Option<usize> {
    if parent == b"stsd" {
        return match &handler? {
            b"vide" | b"pict" | b"auxv" => Some(78),
            b"soun" => match body.get(8..10) {
                Some([0, 1]) => Some(44),
                Some([0, 2]) => Some(64),
                _ => Some(28),
            },
            _ => None,
        };
    }
    // Each item of the metadata list holds its `data` boxes.
    if parent == b"ilst" {
        return Some(0);
    }
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" | b"mvex" | b"udta" | b"dinf"
        | b"sinf" | b"schi" | b"tref" | b"wave" | b"ilst" => Some(0),
        b"meta" => Some(4),
        b"stsd" | b"dref" => Some(8),
        _ => None,
    }
}

/// The handler type of a track (`trak` body → `mdia` → `hdlr`).
fn handler_of(trak: &[u8]) -> Option<[u8; 4]> {
    let mdia = boxes(trak).find(|(k, _)| *k == b"mdia")?.1;
    let hdlr = boxes(mdia).find(|(k, _)| *k == b"hdlr")?.1;
    hdlr.get(8..12)?.try_into().ok()
}

/// The boxes of a body that fit in it, as (type, body); stops at the first that does not.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let (header, size) = box_header(bytes.get(pos..)?)?;
        let b = bytes.get(pos..pos.checked_add(size)?)?;
        pos += size;
        Some((&b[4..8], &b[header..]))
    })
}

/// A box's header length and declared size; `None` without a whole header, or for a size mp4parse refuses itself
/// (zero, or smaller than the header).
fn box_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let word = |at: usize| -> Option<u64> {
        let b = bytes.get(at..at + 4)?;
        Some(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    };
    let (header, size) = match word(0)? {
        1 => (16, (word(8)? << 32) | word(12)?),
        n => (8, n),
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    (size >= header && bytes.len() >= header).then_some((header, size))
}

/// Refuses an MP4 whose boxes claim more than they hold. `mp4parse` reserves memory from what a box declares (its
/// size, or a table's entry count) before reading it: fallibly, yet a 2 KB file could reserve gigabytes. So every
/// box on the paths it reads must fit in the box (or the file) it sits in, and every table it sizes from a count
/// (`stts`, `stsc`, `stco`, `co64`, `stss`, `stsz`, `elst`, `stsd`) must hold that many entries. Headers it cannot
/// read at all are left for it to report.
fn check_boxes(
    bytes: &[u8],
    depth: u32,
    parent: &[u8],
    handler: Option<[u8; 4]>,
) -> Result<(), VideoError> {
    let mut pos = 0usize;
    while let Some((header, size)) = bytes.get(pos..).and_then(box_header) {
        let kind = &bytes[pos + 4..pos + 8];
        if size > bytes.len() - pos {
            // At the top, mp4parse skips media data without reading it into memory.
            if depth == 0 && matches!(kind, b"mdat" | b"free" | b"skip" | b"wide") {
                return Ok(());
            }
            return Err(VideoError::Corrupt(format!(
                "the {} box is larger than {}",
                String::from_utf8_lossy(kind),
                if depth == 0 {
                    "the file (is it truncated?)"
                } else {
                    "the box it is in"
                }
            )));
        }
        let body = &bytes[pos + header..pos + size];
        check_table(kind, body)?;
        let handler = if kind == b"trak" {
            handler_of(body)
        } else {
            handler
        };
        if let Some(skip) = children_at(kind, body, parent, handler).filter(|_| depth < 16) {
            check_boxes(body.get(skip..).unwrap_or(&[]), depth + 1, kind, handler)?;
        }
        pos += size;
    }
    Ok(())
}

/// One box's declared entry count against its body (after the version and flags).
fn check_table(kind: &[u8], body: &[u8]) -> Result<(), VideoError> {
    let word = |at: usize| -> u64 {
        body.get(at..at + 4).map_or(0, |b| {
            u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        })
    };
    // (offset of the count, bytes per entry)
    let (count_at, entry) = match kind {
        b"stts" | b"co64" => (4, 8),
        b"stsc" => (4, 12),
        b"stco" | b"stss" => (4, 4),
        // A sample size of zero means a table of sizes follows.
        b"stsz" if word(4) == 0 => (8, 4),
        b"elst" => (4, if body.first() == Some(&1) { 20 } else { 12 }),
        // Each description is a box of at least 8 bytes.
        b"stsd" => (4, 8),
        _ => return Ok(()),
    };
    let room = (body.len() as u64).saturating_sub(count_at + 4);
    if word(count_at as usize).saturating_mul(entry) > room {
        return Err(VideoError::Corrupt(format!(
            "the {} box declares more entries than it holds",
            String::from_utf8_lossy(kind)
        )));
    }
    Ok(())
}

/// The number of samples `mp4parse::unstable::create_sample_table` will build (and reserve room for) from the
/// chunk tables, counted the same way: `stsc` runs over the `stco` chunks, a run with the same first chunk as the
/// next skipped, and the count ending at the first empty run or at a run longer than the chunks left. Kept in step
/// with mp4parse 0.17 (the lock file pins it); a debug assertion in `demux` compares it with the built table.
fn declared_samples(track: &mp4parse::Track) -> u64 {
    let (Some(stsc), Some(stco)) = (&track.stsc, &track.stco) else {
        return 0;
    };
    let mut chunks_left = u32::try_from(stco.offsets.len()).unwrap_or(u32::MAX);
    let mut runs = stsc.samples.as_slice().iter().peekable();
    let mut total = 0u64;
    loop {
        let (first, end, per_chunk) = loop {
            match (runs.next(), runs.peek()) {
                (Some(run), Some(next)) if run.first_chunk == next.first_chunk => continue,
                (Some(run), Some(next)) if run.first_chunk > 0 && next.first_chunk > 0 => {
                    break (
                        run.first_chunk - 1,
                        next.first_chunk - 1,
                        run.samples_per_chunk,
                    )
                }
                (Some(run), None) if run.first_chunk > 0 => {
                    break match run.first_chunk.checked_add(chunks_left) {
                        Some(end) => (run.first_chunk - 1, end - 1, run.samples_per_chunk),
                        None => (0, 0, 0),
                    }
                }
                _ => break (0, 0, 0),
            }
        };
        let len = end.saturating_sub(first);
        let Some(left) = chunks_left.checked_sub(len).filter(|_| len > 0) else {
            return total;
        };
        chunks_left = left;
        total = total.saturating_add(u64::from(len) * u64::from(per_chunk));
    }
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
