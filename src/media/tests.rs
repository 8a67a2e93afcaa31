use super::demux::{avcc_to_annexb, parse_avcc, rotation_of};
use super::*;

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A file with a valid `ftyp` and a movie box holding one video track whose sample entry is `entry` (no samples).
fn movie(entry: &[u8; 4]) -> Vec<u8> {
    movie_with_samples(entry, None)
}

/// The same with a sample table: `n` samples of 10 bytes in one chunk at offset 0, each lasting `delta_ms`.
fn movie_with_samples(entry: &[u8; 4], samples: Option<(u32, u32)>) -> Vec<u8> {
    let ftyp = boxed(b"ftyp", b"isom\0\0\x02\0isomavc1");
    let mut vse = vec![0u8; 6];
    vse.extend_from_slice(&1u16.to_be_bytes());
    vse.extend_from_slice(&[0u8; 16]);
    vse.extend_from_slice(&640u16.to_be_bytes());
    vse.extend_from_slice(&480u16.to_be_bytes());
    vse.extend_from_slice(&[0u8; 50]);
    let config: &[u8; 4] = if entry == b"avc1" { b"avcC" } else { b"hvcC" };
    vse.extend(boxed(
        config,
        &[
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 2, 0x68, 0xee,
        ],
    ));
    let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
    stsd.extend(boxed(entry, &vse));
    let mut stbl = boxed(b"stsd", &stsd);
    if let Some((n, delta_ms)) = samples {
        let words = |w: &[u32]| -> Vec<u8> { w.iter().flat_map(|x| x.to_be_bytes()).collect() };
        stbl.extend(boxed(b"stts", &words(&[0, 1, n, delta_ms])));
        stbl.extend(boxed(b"stsc", &words(&[0, 1, 1, n, 1])));
        stbl.extend(boxed(b"stsz", &words(&[0, 10, n])));
        stbl.extend(boxed(b"stco", &words(&[0, 1, 0])));
    }
    let stbl = boxed(b"stbl", &stbl);
    let minf = boxed(b"minf", &stbl);
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(b"vide");
    hdlr.extend_from_slice(&[0u8; 13]);
    let mut mdhd = vec![0u8; 12];
    mdhd.extend_from_slice(&1000u32.to_be_bytes());
    mdhd.extend_from_slice(&0u32.to_be_bytes());
    mdhd.extend_from_slice(&[0x55, 0xc4, 0, 0]);
    let mut mdia = boxed(b"mdhd", &mdhd);
    mdia.extend(boxed(b"hdlr", &hdlr));
    mdia.extend(minf);
    let trak = boxed(b"trak", &boxed(b"mdia", &mdia));
    let mut out = ftyp;
    out.extend(boxed(b"moov", &trak));
    out
}

#[test]
fn container_errors_have_their_codes() {
    let l = VideoLimits::default();
    let code = |b: &[u8], l: &VideoLimits| decode_video(b, l).err().map(|e| e.code());
    assert_eq!(code(b"", &l), Some("VIDEO_NOT_MP4"));
    assert_eq!(code(b"GIF89a some bytes here", &l), Some("VIDEO_NOT_MP4"));
    assert_eq!(code(&[0xffu8; 4096], &l), Some("VIDEO_NOT_MP4"));
    let small = VideoLimits { max_bytes: 10, ..l };
    assert_eq!(code(&[0u8; 11], &small), Some("VIDEO_TOO_MANY_BYTES"));
    // An ftyp and nothing else: an MP4 cut short.
    assert_eq!(
        code(&boxed(b"ftyp", b"isom\0\0\x02\0isom"), &l),
        Some("VIDEO_CORRUPT")
    );
    assert_eq!(code(&movie(b"hvc1"), &l), Some("VIDEO_UNSUPPORTED_CODEC"));
    let e = decode_video(&movie(b"hvc1"), &l).unwrap_err();
    assert!(e.to_string().contains("HEVC"), "{e}");
    // H.264 but no sample tables.
    assert_eq!(code(&movie(b"avc1"), &l), Some("VIDEO_CORRUPT"));
    let tiny = VideoLimits {
        max_long_side: 320,
        ..l
    };
    assert_eq!(code(&movie(b"avc1"), &tiny), Some("VIDEO_TOO_LARGE"));
    for c in VideoError::CODES {
        assert!(c.starts_with("VIDEO_"));
    }
    let (zh, en) = e.messages();
    assert!(!zh.is_empty() && !en.is_empty());
}

#[test]
fn duration_and_frame_limits_are_checked_before_decoding() {
    let l = VideoLimits::default();
    let code = |n: u32, delta: u32| {
        decode_video(&movie_with_samples(b"avc1", Some((n, delta))), &l)
            .err()
            .map(|e| e.code())
    };
    assert_eq!(code(5, 100), Some("VIDEO_TOO_SHORT"));
    assert_eq!(code(100, 250), Some("VIDEO_TOO_LONG"));
    assert_eq!(code(3000, 1), Some("VIDEO_TOO_MANY_FRAMES"));
    // A table claiming four billion samples is refused before anything is allocated for it.
    assert_eq!(code(u32::MAX, 1), Some("VIDEO_TOO_MANY_FRAMES"));
    // Within every limit, but the samples are not H.264 (or not even in the file).
    assert_eq!(code(30, 100), Some("VIDEO_CORRUPT"));
}

#[test]
fn tables_declaring_more_entries_than_their_box_holds_are_refused_before_parsing() {
    let l = VideoLimits::default();
    let base = movie_with_samples(b"avc1", Some((30, 100)));
    for kind in [b"stts", b"stsc", b"stco", b"stsd"] {
        let at = base.windows(4).position(|w| w == kind).unwrap();
        // The entry count follows the box type, the version and the flags.
        let mut b = base.clone();
        b[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = decode_video(&b, &l).unwrap_err();
        assert_eq!(e.code(), "VIDEO_CORRUPT");
        assert!(e.to_string().contains("declares more entries"), "{e}");
    }
}

#[test]
fn boxes_larger_than_what_holds_them_are_refused_before_parsing() {
    let l = VideoLimits::default();
    let base = movie_with_samples(b"avc1", Some((30, 100)));
    let corrupt = |b: &[u8]| decode_video(b, &l).unwrap_err().to_string();
    // The file type box claims 4 GB.
    let mut b = base.clone();
    b[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        corrupt(&b).contains("larger than the file"),
        "{}",
        corrupt(&b)
    );
    // The H.264 configuration inside the sample entry claims more than the entry holds.
    let mut b = base.clone();
    let at = b.windows(4).position(|w| w == b"avcC").unwrap() - 4;
    b[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    assert!(
        corrupt(&b).contains("avcC box is larger than the box it is in"),
        "{}",
        corrupt(&b)
    );
}

#[test]
fn hostile_containers_never_panic() {
    let l = VideoLimits::default();
    let base = movie_with_samples(b"avc1", Some((30, 100)));
    // Every truncation, and every single-byte corruption of the headers.
    for n in 0..base.len() {
        let _ = decode_video(&base[..n], &l);
    }
    for i in 0..base.len() {
        for x in [0x00u8, 0xff, 0x80, 0x01] {
            let mut b = base.clone();
            b[i] ^= x;
            let _ = decode_video(&b, &l);
        }
    }
}

#[test]
fn avc_config_and_nal_units() {
    let (sets, n) = parse_avcc(&[
        1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 1, 0x68,
    ])
    .unwrap();
    assert_eq!(n, 4);
    assert_eq!(sets, vec![vec![0x67, 0x64], vec![0x68]]);
    assert!(parse_avcc(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 9, 0x67]).is_err());
    assert!(parse_avcc(&[]).is_err());
    let mut out = Vec::new();
    avcc_to_annexb(&[0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x41], 4, &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x41]);
    out.clear();
    assert!(avcc_to_annexb(&[0, 0, 0, 9, 0x65], 4, &mut out).is_err());
    assert!(avcc_to_annexb(&[0, 0], 4, &mut out).is_err());
}

#[test]
fn rotation_from_the_display_matrix() {
    let one = 0x10000;
    assert_eq!(rotation_of(one, 0, 0, one), 0);
    assert_eq!(rotation_of(0, one, -one, 0), 90);
    assert_eq!(rotation_of(-one, 0, 0, -one), 180);
    assert_eq!(rotation_of(0, -one, one, 0), 270);
    let img = RgbImage::from_fn(4, 2, |x, _| image::Rgb([x as u8, 0, 0]));
    let r = rotate(img, 90);
    assert_eq!(r.dimensions(), (2, 4));
}
