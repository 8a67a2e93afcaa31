//! The one catalogue of why a verification failed, and the recorder of the checks that name it.
//!
//! Every fail code is defined here once: its stored code (the string kept in `verifications.fail_reason` and
//! `attempts.fail_reason`, which must never change), what the person is told, whether another attempt may help,
//! and its meaning on each wire: the Alipay `fail_reason` (the code itself), the cloud API's `SubCode`,
//! `MaterialInfo.faceAttack` and business `Code`, and the public code the hosted page shows. Pure: no I/O.
use serde::Serialize;

use super::state::State;

/// Why a decision failed: stable codes. The hosted flow (`certify::decision`), the video checks
/// (`certify::video`) and the single-photo checks (`certify::photo`) each use the codes of the checks they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// The authority does not know this ID number.
    IdentityNotFound,
    /// The authority knows the number under another name.
    IdentityNameMismatch,
    /// The reference photo has no usable face.
    ReferenceUnusable,
    NoFace,
    MultipleFaces,
    PoorQuality,
    /// A challenged action was not seen in its turn.
    ActionOpenMouth,
    ActionBlink,
    ActionTurnLeft,
    ActionTurnRight,
    /// The colour flashes were not reflected on the face.
    ColourFlash,
    /// The surroundings moved with the face: a photo or screen moved in front of the camera.
    Surroundings,
    /// The face changed during the check.
    IdentityChanged,
    /// The live face does not match the reference.
    FaceMismatch,
    /// A video: too few frames came out of it to judge it.
    TooFewFrames,
    /// A video: no open mouth, blink or head turn anywhere in it.
    NoAction,
}

/// The public code of every identity and match failure on the hosted page.
const IDENTITY_UNCONFIRMED: &str = "IDENTITY_UNCONFIRMED";
/// The Alipay `fail_reason` and the page's code of a failure stored without a reason (a legacy row).
const FAILED: &str = "FAILED";
/// The Alipay `fail_reason` of a verification that expired undecided.
const VERIFICATION_EXPIRED: &str = "VERIFICATION_EXPIRED";

impl FailReason {
    /// Every reason, for reading stored codes back.
    pub const ALL: [FailReason; 16] = [
        FailReason::IdentityNotFound,
        FailReason::IdentityNameMismatch,
        FailReason::ReferenceUnusable,
        FailReason::NoFace,
        FailReason::MultipleFaces,
        FailReason::PoorQuality,
        FailReason::ActionOpenMouth,
        FailReason::ActionBlink,
        FailReason::ActionTurnLeft,
        FailReason::ActionTurnRight,
        FailReason::ColourFlash,
        FailReason::Surroundings,
        FailReason::IdentityChanged,
        FailReason::FaceMismatch,
        FailReason::TooFewFrames,
        FailReason::NoAction,
    ];

    /// The stored code (also the Alipay `fail_reason` and shiren's own reason in the cloud `MaterialInfo`).
    pub fn code(self) -> &'static str {
        match self {
            FailReason::IdentityNotFound => "IDENTITY_NOT_FOUND",
            FailReason::IdentityNameMismatch => "IDENTITY_NAME_MISMATCH",
            FailReason::ReferenceUnusable => "REFERENCE_PHOTO_UNUSABLE",
            FailReason::NoFace => "LIVENESS_NO_FACE",
            FailReason::MultipleFaces => "LIVENESS_MULTIPLE_FACES",
            FailReason::PoorQuality => "LIVENESS_POOR_QUALITY",
            FailReason::ActionOpenMouth => "LIVENESS_ACTION_OPEN_MOUTH",
            FailReason::ActionBlink => "LIVENESS_ACTION_BLINK",
            FailReason::ActionTurnLeft => "LIVENESS_ACTION_TURN_LEFT",
            FailReason::ActionTurnRight => "LIVENESS_ACTION_TURN_RIGHT",
            FailReason::ColourFlash => "LIVENESS_COLOUR_FLASH",
            FailReason::Surroundings => "LIVENESS_SURROUNDINGS",
            FailReason::IdentityChanged => "LIVENESS_IDENTITY_CHANGED",
            FailReason::FaceMismatch => "FACE_MISMATCH",
            FailReason::TooFewFrames => "VIDEO_TOO_FEW_FRAMES",
            FailReason::NoAction => "LIVENESS_NO_ACTION",
        }
    }

    /// The reason of a stored code; `None` for anything else (a legacy row without a known code).
    pub fn from_code(code: &str) -> Option<FailReason> {
        FailReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether another attempt may help: liveness and quality failures can be retried; a live face that does not
    /// match, or an identity the authority does not confirm, is final (retrying would only let an impostor probe).
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            FailReason::IdentityNotFound
                | FailReason::IdentityNameMismatch
                | FailReason::ReferenceUnusable
                | FailReason::FaceMismatch
        )
    }

    /// Identity and match failures: the page tells them apart from nothing else, so that it does not reveal
    /// whether an ID number is registered (the merchant's query gets the precise code).
    fn identity_unconfirmed(self) -> bool {
        matches!(
            self,
            FailReason::IdentityNotFound
                | FailReason::IdentityNameMismatch
                | FailReason::FaceMismatch
        )
    }

    /// The code the hosted page and the mini-program host see.
    pub fn public_code(self) -> &'static str {
        if self.identity_unconfirmed() {
            IDENTITY_UNCONFIRMED
        } else {
            self.code()
        }
    }

    /// What the person in front of the phone is told (Chinese, English). Identity and match failures share one
    /// message: the page must not reveal whether an ID number is registered.
    pub fn messages(self) -> (&'static str, &'static str) {
        match self {
            FailReason::IdentityNotFound
            | FailReason::IdentityNameMismatch
            | FailReason::FaceMismatch => (
                "身份核验未通过，请确认是本人操作。",
                "We could not confirm your identity. Please make sure you are the person named.",
            ),
            FailReason::ReferenceUnusable => (
                "参考照片无法使用，请联系商户。",
                "The reference photo cannot be used. Please contact the merchant.",
            ),
            FailReason::NoFace => (
                "未能持续检测到人脸，请将脸完整放在取景框内。",
                "Your face was not visible long enough. Keep your whole face inside the circle.",
            ),
            FailReason::MultipleFaces => (
                "画面中出现了多张人脸，请确保只有您本人。",
                "More than one face was seen. Make sure only you are in view.",
            ),
            FailReason::PoorQuality => (
                "人脸太小或不清晰，请靠近一些并保持光线充足。",
                "Your face was too small or unclear. Move closer and find good light.",
            ),
            FailReason::ActionOpenMouth => (
                "没有看到张嘴动作，请在提示时张大嘴巴。",
                "We did not see you open your mouth. Open it wide when asked.",
            ),
            FailReason::ActionBlink => (
                "没有看到眨眼动作，请在提示时眨眼。",
                "We did not see you blink. Blink when asked.",
            ),
            FailReason::ActionTurnLeft | FailReason::ActionTurnRight => (
                "没有看到转头动作，请按提示方向缓慢转头。",
                "We did not see you turn your head. Turn it slowly the way you are asked.",
            ),
            FailReason::ColourFlash => (
                "屏幕闪光未能照亮面部，请调亮屏幕并靠近一些。",
                "The screen's light did not reach your face. Turn up the brightness and move closer.",
            ),
            FailReason::Surroundings => (
                "检测到疑似翻拍，请直接面对摄像头完成认证。",
                "This looked like a photo or screen. Face the camera yourself.",
            ),
            FailReason::IdentityChanged => (
                "认证过程中人脸发生变化，请本人全程完成。",
                "The face changed during the check. Complete it yourself from start to end.",
            ),
            FailReason::TooFewFrames => (
                "视频中可用的画面太少，请重新录制。",
                "Too few usable frames came out of the video. Please record it again.",
            ),
            FailReason::NoAction => (
                "视频中没有看到眨眼、张嘴或转头动作，请在录制时眨眼或张嘴。",
                "We did not see you blink, open your mouth or turn your head. Do one while recording.",
            ),
        }
    }

    /// What the person is told about a recorded video (Chinese, English): the words of [`Self::messages`] where
    /// they fit a video, others where they speak of the live camera.
    pub fn video_messages(self) -> (&'static str, &'static str) {
        match self {
            FailReason::NoFace => (
                "视频中未能持续检测到人脸，请让脸完整出现在画面中。",
                "Your face was not visible long enough. Keep your whole face in the picture.",
            ),
            FailReason::MultipleFaces => (
                "视频中出现了多张人脸，请确保只有您本人。",
                "More than one face was seen. Make sure only you are in view.",
            ),
            FailReason::Surroundings => (
                "检测到疑似翻拍，请本人直接面对摄像头录制。",
                "This looked like a photo or screen. Record yourself facing the camera.",
            ),
            FailReason::IdentityChanged => (
                "视频中人脸发生变化，请本人全程录制。",
                "The face changed during the video. Record it yourself from start to end.",
            ),
            other => other.messages(),
        }
    }

    /// Whether a video failing for this reason shows a liveness risk (a verdict with `Passed` F) rather than being
    /// unusable as material (no face, too small, too few frames: refused with no verdict). A second face or a face
    /// that changes is a risk, not unusable material.
    pub fn is_liveness_risk(self) -> bool {
        matches!(
            self,
            FailReason::MultipleFaces
                | FailReason::Surroundings
                | FailReason::NoAction
                | FailReason::IdentityChanged
        )
    }

    /// The cloud API's answer for a video failing for this reason: `"205"` as a `SubCode` for liveness risks,
    /// `"419"` (supplied material unusable) as a business `Code` otherwise.
    pub fn cloud_code(self) -> &'static str {
        if self.is_liveness_risk() {
            "205"
        } else {
            "419"
        }
    }

    /// The cloud `SubCode` of a failed verdict: 201 name and number do not match; 202 identity unknown to the
    /// authority; 203 the authority's photo is unusable; 204 the face does not match; 205 liveness not proven.
    pub fn cloud_sub_code(self) -> &'static str {
        match self {
            FailReason::IdentityNameMismatch => "201",
            FailReason::IdentityNotFound => "202",
            FailReason::ReferenceUnusable => "203",
            FailReason::FaceMismatch => "204",
            _ => "205",
        }
    }

    /// Whether the cloud `MaterialInfo.faceAttack` says "possibly an attack" (the hosted flow's liveness
    /// failures; a video's `LIVENESS_NO_ACTION` has always answered F and still does).
    pub fn face_attack(self) -> bool {
        matches!(
            self,
            FailReason::ActionOpenMouth
                | FailReason::ActionBlink
                | FailReason::ActionTurnLeft
                | FailReason::ActionTurnRight
                | FailReason::ColourFlash
                | FailReason::Surroundings
                | FailReason::IdentityChanged
                | FailReason::MultipleFaces
        )
    }
}

/// The cloud `SubCode` of a verdict: 200 passed, else the reason's; a failure without a known reason (a legacy
/// row) is 205.
pub fn cloud_sub_code(passed: bool, reason: Option<FailReason>) -> &'static str {
    match (passed, reason) {
        (true, _) => "200",
        (false, Some(r)) => r.cloud_sub_code(),
        (false, None) => "205",
    }
}

/// The cloud `SubCode` of a stored verdict (its stored reason code, if any).
pub fn stored_cloud_sub_code(passed: bool, stored: Option<&str>) -> &'static str {
    cloud_sub_code(passed, stored.and_then(FailReason::from_code))
}

/// Whether a stored reason means "possibly an attack" (`MaterialInfo.faceAttack`).
pub fn stored_face_attack(stored: Option<&str>) -> bool {
    stored
        .and_then(FailReason::from_code)
        .is_some_and(FailReason::face_attack)
}

/// The Alipay `fail_reason` of a verification in `state` (as seen now) with its stored reason: the stored code
/// when failed (`FAILED` when none was stored), `VERIFICATION_EXPIRED` when it expired undecided, none otherwise.
pub fn alipay_fail_reason(state: State, stored: Option<String>) -> Option<String> {
    match state {
        State::Failed => stored.or_else(|| Some(FAILED.into())),
        State::Expired => Some(VERIFICATION_EXPIRED.into()),
        _ => None,
    }
}

/// The page's code of a stored reason: the reason's public code, `FAILED` for an unknown one, empty for none.
pub fn stored_public_code(stored: Option<&str>) -> &'static str {
    match (stored, stored.and_then(FailReason::from_code)) {
        (_, Some(r)) => r.public_code(),
        (Some(_), None) => FAILED,
        (None, None) => "",
    }
}

/// One recorded check: its name, whether it passed, and its score and threshold where it has them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    /// A check with its score rounded to three decimals.
    pub fn new(name: &str, passed: bool, score: Option<f32>, threshold: Option<f32>) -> Check {
        Check {
            score: score.map(round3),
            ..Check::exact(name, passed, score, threshold)
        }
    }

    /// A check with its score as measured.
    pub fn exact(name: &str, passed: bool, score: Option<f32>, threshold: Option<f32>) -> Check {
        Check {
            name: name.into(),
            passed,
            score,
            threshold,
            detail: None,
        }
    }

    /// This check with a detail for people reading it.
    pub fn detail(mut self, detail: Option<String>) -> Check {
        self.detail = detail;
        self
    }
}

/// Rounds to three decimals (scores are recorded so).
pub fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// Records checks in the order they run; the first failed one that decides names the reason.
#[derive(Debug, Default)]
pub struct Recorder {
    checks: Vec<Check>,
    first: Option<FailReason>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records a deciding check: when it failed and none failed before, `reason` is the verdict's reason.
    pub fn record(&mut self, check: Check, reason: FailReason) {
        if !check.passed && self.first.is_none() {
            self.first = Some(reason);
        }
        self.checks.push(check);
    }

    /// Records a check that informs but does not decide.
    pub fn note(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The first failed deciding check's reason so far.
    pub fn failed(&self) -> Option<FailReason> {
        self.first
    }

    /// Every check in order, and the reason (none when every deciding check passed).
    pub fn finish(self) -> (Vec<Check>, Option<FailReason>) {
        (self.checks, self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_codes_read_back_and_every_code_has_words() {
        for r in FailReason::ALL {
            assert_eq!(FailReason::from_code(r.code()), Some(r));
            for (zh, en) in [r.messages(), r.video_messages()] {
                assert!(!zh.is_empty() && !en.is_empty());
            }
        }
        assert_eq!(FailReason::from_code("NOPE"), None);
        let mut codes: Vec<&str> = FailReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), FailReason::ALL.len(), "codes are unique");
    }

    #[test]
    fn sub_codes_follow_the_first_failed_check() {
        assert_eq!(cloud_sub_code(true, None), "200");
        assert_eq!(
            stored_cloud_sub_code(false, Some("IDENTITY_NAME_MISMATCH")),
            "201"
        );
        assert_eq!(
            stored_cloud_sub_code(false, Some("IDENTITY_NOT_FOUND")),
            "202"
        );
        assert_eq!(
            stored_cloud_sub_code(false, Some("REFERENCE_PHOTO_UNUSABLE")),
            "203"
        );
        assert_eq!(stored_cloud_sub_code(false, Some("FACE_MISMATCH")), "204");
        for r in [
            "LIVENESS_NO_FACE",
            "LIVENESS_MULTIPLE_FACES",
            "LIVENESS_POOR_QUALITY",
            "LIVENESS_ACTION_OPEN_MOUTH",
            "LIVENESS_COLOUR_FLASH",
            "LIVENESS_SURROUNDINGS",
            "LIVENESS_IDENTITY_CHANGED",
            "LIVENESS_NO_ACTION",
        ] {
            assert!(FailReason::from_code(r).is_some(), "{r}");
            assert_eq!(stored_cloud_sub_code(false, Some(r)), "205", "{r}");
        }
        assert_eq!(stored_cloud_sub_code(false, None), "205");
        assert_eq!(stored_cloud_sub_code(false, Some("SOMETHING_NEW")), "205");
    }

    #[test]
    fn the_page_hides_identity_failures_and_alipay_gets_the_stored_code() {
        assert_eq!(
            stored_public_code(Some("IDENTITY_NOT_FOUND")),
            "IDENTITY_UNCONFIRMED"
        );
        assert_eq!(
            FailReason::FaceMismatch.public_code(),
            "IDENTITY_UNCONFIRMED"
        );
        assert_eq!(
            stored_public_code(Some("LIVENESS_NO_FACE")),
            "LIVENESS_NO_FACE"
        );
        assert_eq!(stored_public_code(Some("OLD")), "FAILED");
        assert_eq!(stored_public_code(None), "");
        assert_eq!(
            alipay_fail_reason(State::Failed, Some("FACE_MISMATCH".into())).as_deref(),
            Some("FACE_MISMATCH")
        );
        assert_eq!(
            alipay_fail_reason(State::Failed, None).as_deref(),
            Some("FAILED")
        );
        assert_eq!(
            alipay_fail_reason(State::Expired, None).as_deref(),
            Some("VERIFICATION_EXPIRED")
        );
        assert_eq!(alipay_fail_reason(State::Passed, None), None);
    }

    #[test]
    fn the_recorder_keeps_the_first_deciding_failure() {
        let mut r = Recorder::new();
        r.record(
            Check::new("a", true, Some(1.23456), None),
            FailReason::NoFace,
        );
        r.note(Check::new("b", false, None, None));
        r.record(Check::new("c", false, None, None), FailReason::PoorQuality);
        r.record(Check::new("d", false, None, None), FailReason::FaceMismatch);
        let (checks, first) = r.finish();
        assert_eq!(first, Some(FailReason::PoorQuality));
        assert_eq!(checks.len(), 4);
        assert_eq!(checks[0].score, Some(1.235));
        assert_eq!(
            Check::exact("e", true, Some(1.23456), None).score,
            Some(1.23456)
        );
    }
}
