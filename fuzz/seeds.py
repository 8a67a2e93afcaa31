#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target under fuzz/corpus/<target>/.

Everything is made here: images and videos from ffmpeg's lavfi test sources (no photo of anyone), a synthetic
ID number, made-up app ids and keys, requests signed the way the SDKs sign them. Needs ffmpeg (with libx264 and
libwebp) and Python's `cryptography`. Run from anywhere: `python3 fuzz/seeds.py`.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
import tempfile
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
# The secret shiren::fuzzing checks cloud signatures with, so signed seeds reach the "signature matches" path.
SECRET = "fuzz-secret-of-the-access-key"
TMP = tempfile.mkdtemp(prefix="shiren-seeds-")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ffmpeg(*args, out):
    path = os.path.join(TMP, out)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, path], check=True)
    with open(path, "rb") as f:
        return f.read()


def still(size, fmt, *extra, src="testsrc2"):
    """One frame of a lavfi test source (textured, coloured) as an image file."""
    return ffmpeg("-f", "lavfi", "-i", f"{src}=size={size}:rate=1", "-frames:v", "1", *extra,
                  out=f"still-{size}-{len(extra)}-{src}.{fmt}")


def cert_no(first17):
    """A synthetic GB 11643 number: 17 digits and their check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(first17, weights))
    return first17 + "10X98765432"[s % 11]


def form(pairs, plus=True):
    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


# ---------------------------------------------------------------------------------------------------- images
JPEG = still("96x72", "jpg", "-q:v", "5")
JPEG_GRAY = still("64x64", "jpg", "-pix_fmt", "gray", "-q:v", "8")
PNG = still("80x60", "png")
PNG_GRAY = still("48x48", "png", "-pix_fmt", "gray")
PNG_PAL = still("64x40", "png", "-pix_fmt", "pal8")
PNG_RGBA = still("40x40", "png", "-pix_fmt", "rgba")
PNG_16 = still("40x36", "png", "-pix_fmt", "rgb48be")
PNG_TALL = still("32x200", "png", "-pix_fmt", "gray")
WEBP = still("64x48", "webp", "-c:v", "libwebp", "-quality", "40")
WEBP_LOSSLESS = still("48x32", "webp", "-c:v", "libwebp", "-lossless", "1")


def with_exif_orientation(jpeg, orientation):
    """The JPEG with an APP1 Exif segment carrying only the Orientation tag (big-endian TIFF)."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


put("image_gate", "jpeg_96x72", JPEG)
put("image_gate", "jpeg_gray_64", JPEG_GRAY)
put("image_gate", "jpeg_exif_rotated", with_exif_orientation(JPEG, 6))
put("image_gate", "png_rgb_80x60", PNG)
put("image_gate", "png_gray_48", PNG_GRAY)
put("image_gate", "png_palette", PNG_PAL)
put("image_gate", "png_rgba", PNG_RGBA)
put("image_gate", "png_16bit", PNG_16)
put("image_gate", "png_aspect_refused", PNG_TALL)
put("image_gate", "webp_lossy", WEBP)
put("image_gate", "webp_lossless", WEBP_LOSSLESS)

# ---------------------------------------------------------------------------------------------------- video
def video(name, *extra, size="64x48", seconds="1.5", src="testsrc2"):
    return ffmpeg("-f", "lavfi", "-i", f"{src}=size={size}:rate=8", "-t", seconds, *extra,
                  "-movflags", "+faststart", out=name)


put("video", "h264_baseline.mp4", video("b.mp4", "-c:v", "libx264", "-profile:v", "baseline",
                                        "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "40"))
put("video", "h264_high_bframes.mp4", video("h.mp4", "-c:v", "libx264", "-profile:v", "high",
                                            "-pix_fmt", "yuv420p", "-bf", "2", "-crf", "42"))
put("video", "h264_rotated.mp4", ffmpeg("-i", os.path.join(TMP, "b.mp4"), "-c", "copy",
                                        "-metadata:s:v:0", "rotate=90", out="r.mp4"))
put("video", "h264_with_aac_audio.mp4",
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=8", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
           "-t", "1.5", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-crf", "45",
           "-c:a", "aac", "-b:a", "8k", "-movflags", "+faststart", out="a.mp4"))
put("video", "mpeg4_refused.mp4", video("m.mp4", "-c:v", "mpeg4", "-q:v", "20", seconds="1.2"))
put("video", "h264_too_short.mp4", video("s.mp4", "-c:v", "libx264", "-profile:v", "baseline",
                                         "-pix_fmt", "yuv420p", "-crf", "45", seconds="0.5"))

# ---------------------------------------------------------------------------------------------------- gateway
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_NO = cert_no("11010519900307123")


def alipay_signed(params, sign_type="RSA2", charset="utf-8"):
    """The SDKs' rule: sorted non-empty parameters but sign, key=value&…, signed in the request charset."""
    content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v != "" and k != "sign")
    digest = hashes.SHA256() if sign_type == "RSA2" else hashes.SHA1()
    sig = KEY.sign(content.encode(charset), padding.PKCS1v15(), digest)
    return dict(params, sign=base64.b64encode(sig).decode())


biz_init = {
    "outer_order_no": "ZGYD201809132323000001234",
    "biz_code": "FACE",
    "identity_param": {"identity_type": "CERT_INFO", "cert_type": "IDENTITY_CARD",
                       "cert_name": "测试", "cert_no": CERT_NO},
    "merchant_config": {"return_url": "https://m.example.com/done?x=1", "face_reserve_strategy": "never"},
}
common = {
    "app_id": "2021000000000001", "charset": "utf-8", "format": "JSON", "sign_type": "RSA2",
    "timestamp": "2026-06-01 08:00:00", "version": "1.0",
}
p = alipay_signed(dict(common, method="alipay.user.certify.open.initialize",
                       biz_content=json.dumps(biz_init, ensure_ascii=False, separators=(",", ":"))))
# The Java SDK: common parameters in the query, biz_content in the body.
query = form([(k, v) for k, v in p.items() if k != "biz_content"])
put("gateway_form", "initialize_query_and_body", query + "\n" + form([("biz_content", p["biz_content"])]))
# The Python SDK: everything in the body.
put("gateway_form", "initialize_body_only", form(sorted(p.items())))
p = alipay_signed(dict(common, method="alipay.user.certify.open.query", notify_url="",
                       biz_content='{"certify_id":"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}'))
put("gateway_form", "query_with_empty_value", form(sorted(p.items()), plus=False))
gbk = dict(common, charset="GBK", sign_type="RSA", method="alipay.user.certify.open.certify",
           biz_content='{"certify_id":"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6","说明":"实人认证"}')
p = alipay_signed(gbk, sign_type="RSA", charset="gbk")
put("gateway_form", "certify_gbk",
    "&".join(f"{urllib.parse.quote_plus(k.encode('gbk'))}={urllib.parse.quote_plus(v.encode('gbk'))}"
             for k, v in sorted(p.items())))
put("gateway_form", "unknown_charset_and_method", "method=alipay.x%22y&charset=latin9&k=%FF%FE\n&&=&a")

# ---------------------------------------------------------------------------------------------------- cloud
def pct(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_query(pairs):
    return "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in pairs))


def acs3(method, query_pairs, headers, body, action="InitFaceVerify", key_id="LTAI5tFuzzAccessKey01"):
    headers = dict(headers)
    headers.update({
        "host": "127.0.0.1", "x-acs-action": action, "x-acs-version": "2019-03-07",
        "x-acs-date": "2026-06-01T00:00:00Z", "x-acs-signature-nonce": "3f1c2a7e-0b5d-4e8a-9c6f-1d2e3f4a5b6c",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    })
    signed = sorted(headers)
    canonical = "\n".join([method, "/", canonical_query(query_pairs)]) + "\n"
    canonical += "".join(f"{h}:{headers[h].strip()}\n" for h in signed) + "\n"
    canonical += ";".join(signed) + "\n" + headers["x-acs-content-sha256"]
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(SECRET.encode(), sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(signed)},Signature={sig}"
    lines = [method, form(query_pairs, plus=False)] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\n".join(lines) + "\n\n").encode() + body


init_params = [("SceneId", "1000000001"), ("OuterOrderNo", "e0c34a77f5ac40a5aa5e6ed20c353888"),
               ("ProductCode", "ID_PRO"), ("CertType", "IDENTITY_CARD"), ("CertName", "测试"),
               ("CertNo", CERT_NO), ("ReturnUrl", "https://m.example.com/back"),
               ("MetaInfo", '{"zimVer":"3.0.0","appVersion":"1","bioMetaInfo":"4.1.0:11501568,0"}')]
body = form(init_params, plus=False).encode()
put("cloud_signature", "acs3_post_form",
    acs3("POST", [], {"content-type": "application/x-www-form-urlencoded"}, body))
put("cloud_signature", "acs3_post_query", acs3("POST", init_params[:3], {}, b"", action="DescribeFaceVerify"))


def rpc(method, params, in_body):
    params = dict(params, Format="JSON", Version="2019-03-07", AccessKeyId="LTAI5tFuzzAccessKey01",
                  SignatureMethod="HMAC-SHA1", Timestamp="2026-06-01T00:00:00Z", SignatureVersion="1.0",
                  SignatureNonce="9b7e6d5c-4a3b-2c1d-0e9f-8a7b6c5d4e3f")
    sts = method + "&" + pct("/") + "&" + pct(canonical_query(params.items()))
    sig = base64.b64encode(hmac.new((SECRET + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
    q = form(sorted(dict(params, Signature=sig).items()), plus=False)
    if in_body:
        return f"{method}\n\ncontent-type: application/x-www-form-urlencoded\n\n{q}".encode()
    return f"{method}\n{q}\n\n".encode()


put("cloud_signature", "rpc_get", rpc("GET", dict(init_params, Action="InitFaceVerify"), False))
put("cloud_signature", "rpc_post_body", rpc("POST", {"Action": "DescribeFaceVerify", "SceneId": "1000000001",
                                                     "CertifyId": "sha1b2c3d4e5f6a7b8c9d0e1f2a3b4c5"}, True))
put("cloud_signature", "acs3_malformed",
    "GET\nAction=A&Version=2019-03-07\nauthorization: ACS3-HMAC-SHA256 Credential=,SignedHeaders=Host;;x,"
    "Signature=zz, Signature=1\nx-acs-action: Other\n\n")

# ---------------------------------------------------------------------------------------------------- biz/params
put("biz_params", "initialize_objects.json", json.dumps(biz_init, ensure_ascii=False))
strings = dict(biz_init, identity_param=json.dumps(biz_init["identity_param"], ensure_ascii=False),
               merchant_config=json.dumps({"return_url": "alipays://platformapi/startapp?appId=1"}),
               face_contrast_picture="data:image/jpeg;base64," + base64.b64encode(JPEG_GRAY).decode())
put("biz_params", "initialize_strings_and_picture.json", json.dumps(strings, ensure_ascii=False))
put("biz_params", "initialize_wrong_types.json",
    '{"outer_order_no":12,"biz_code":"SMART_FACE","identity_param":[],"merchant_config":null}')
put("biz_params", "cloud_init.form",
    form(init_params + [("CallbackUrl", "https://cb.example.com/notify?a=1"), ("CallbackToken", "t0k"),
                        ("Model", "MULTI_ACTION")], plus=False))
put("biz_params", "cloud_picture.form",
    form([("ProductCode", "ID_MIN"), ("OuterOrderNo", "o-1"), ("CertName", "测试"), ("CertNo", CERT_NO),
          ("FaceContrastPicture", base64.b64encode(WEBP).decode())]))
put("biz_params", "cloud_compare_sources.form",
    form([("SourceFaceContrastPicture", base64.b64encode(JPEG_GRAY).decode()),
          ("TargetFaceContrastPictureUrl", "https://img.example.com/a.jpg"), ("TargetCertifyId", "x"),
          ("SourceOssBucketName", "b"), ("CertType", "PASSPORT"), ("EncryptType", "SM2")]))

# ---------------------------------------------------------------------------------------------------- hosted
frames = [ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x72:rate=8", "-vf", f"select=eq(n\\,{i})",
                 "-frames:v", "1", "-q:v", "6", out=f"frame{i}.jpg") for i in range(3)]
attempt = {"challenge_id": "4f0c6a1e9b2d4c3a8e7f6a5b4c3d2e1f",
           "frames": [{"t_ms": 125 * i, "jpeg": "data:image/jpeg;base64," + base64.b64encode(f).decode()}
                      for i, f in enumerate(frames)]}
put("hosted_upload", "attempt.json", json.dumps(attempt))
put("hosted_upload", "attempt_bad_base64.json",
    '{"challenge_id":"c","frames":[{"t_ms":0,"jpeg":"data:image/jpeg;base64,@@@"},{"t_ms":4294967295,"jpeg":""}]}')
MARK = b"\n--frame--\n"
put("hosted_upload", "raw_jpeg_frames", MARK.join(frames))
put("hosted_upload", "raw_mixed_frames", MARK.join([frames[0], PNG, WEBP]))

total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(CORPUS) for f in fs)
print(f"corpus: {total} bytes")
