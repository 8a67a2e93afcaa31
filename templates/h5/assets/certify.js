/*
 * shiren hosted verification page (served as /h5/assets/certify.js).
 *
 * Flow: consent -> camera -> challenge (POST …/challenge) -> timed capture with colour flashes and actions ->
 * upload (POST …/attempt) -> retry | result -> back to the merchant (return_url, or the Alipay mini-program host
 * through my.postMessage + my.navigateBack). Decline/cancel: POST …/cancel.
 *
 * Every screen is an element with a stable id; #app[data-screen] names the one on screen (browser tests wait on it).
 * No framework, no build step, nothing loaded from elsewhere (the page runs under a strict CSP).
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------------------------------------- strings
  var STR = {
    'zh-CN': {
      app_title: '实人认证',
      lang_switch: 'English',
      lang_switch_label: 'Switch to English',
      consent_title: '开始前请阅读',
      consent_intro: '{merchant}请你完成实人认证：确认是真人在操作，并且就是{merchant}提交的这位本人。',
      consent_what_h: '收集哪些信息',
      consent_what: '本次检测过程中摄像头拍到的面部画面；以及{merchant}提交的你的姓名和身份证号。',
      consent_intro_picture: '{merchant}请你完成人脸核验：确认是真人在操作，并且与{merchant}提供的照片是同一人。',
      consent_what_picture: '本次检测过程中摄像头拍到的面部画面，用来与{merchant}提供的照片比对。',
      consent_why_picture: '只用于确认镜头前是真人，并且与该照片是同一人，不用于其他目的。',
      consent_intro_liveness: '{merchant}请你完成活体检测：确认镜头前是真人在操作。',
      consent_what_liveness: '本次检测过程中摄像头拍到的面部画面。',
      consent_why_liveness: '只用于确认镜头前是真人，不用于其他目的。',
      consent_why_h: '用来做什么',
      consent_why: '只用于确认镜头前是真人，并且与该身份一致，不用于其他目的。',
      consent_keep_h: '保存多久',
      consent_keep_reserve: '认证结果记录会保存。应{merchant}要求，会保留一张面部照片 {days} 天；其余画面在得出结果后即删除。',
      consent_keep_discard: '认证结果记录会保存；面部画面在得出结果后即删除，不会保留。',
      consent_who_h: '由谁决定删除',
      consent_who: '{merchant}是这些信息的控制者，决定保存与删除。如需查询或删除，请联系{merchant}。',
      consent_tips: '接下来会请求使用前置摄像头。请在光线充足处，将整张脸放入圆框内。',
      agree: '同意并开始',
      decline: '不同意',
      cancel: '取消认证',
      retry: '重试',
      camera_wait_title: '正在打开摄像头…',
      camera_wait_text: '如果出现授权提示，请选择“允许”。',
      denied_title: '没有摄像头权限',
      denied_text: '认证需要使用前置摄像头，但访问被拒绝了。请先允许本页面使用摄像头，再点“重试”：',
      denied_step_browser: '浏览器：点地址栏左侧的锁形图标 → 网站设置 → 摄像头 → 允许。',
      denied_step_ios: 'iPhone：设置 → 找到当前使用的浏览器或 App → 相机 → 打开。',
      denied_step_android: '安卓手机：设置 → 应用 → 当前使用的浏览器或 App → 权限 → 相机 → 允许。',
      denied_step_app: '在 App 内打开时，也可能需要在该 App 的设置里允许使用相机。',
      missing_title: '没有找到摄像头',
      missing_text: '这台设备上没有可用的摄像头，或当前浏览器不支持调用摄像头。请换用带前置摄像头的手机，并用系统浏览器或 App 打开本页面。',
      camerr_title: '摄像头无法启动',
      camerr_text: '摄像头可能正被其他应用占用。请关闭其他正在使用摄像头的应用后重试。',
      ready_title: '请将脸放入圆框内',
      ready_text: '保持光线充足，正对屏幕。准备好后点“开始”，然后按屏幕提示完成动作。',
      ready_attempts: '第 {attempt} 次，共可尝试 {max} 次',
      start: '开始',
      preparing: '正在准备…',
      step_baseline: '请保持不动',
      step_action: '动作 {i}/{n}',
      baseline: '请正视屏幕',
      act_open_mouth: '请张嘴',
      act_blink: '请眨眨眼',
      act_turn_left: '请向左转头',
      act_turn_right: '请向右转头',
      uploading_title: '正在上传…',
      upload_pct: '已上传 {pct}%',
      verifying_title: '正在核验…',
      verifying_text: '请稍候，不要关闭页面。',
      busy_title: '请稍候…',
      retry_title: '这次没有通过',
      retry_left: '再试一次（还剩 {left} 次）',
      tip_light: '请在光线均匀、充足的地方，避免背光。',
      tip_face: '请让整张脸留在圆框内，不要遮挡面部。',
      tip_follow: '请在提示出现时再做动作，动作幅度可以大一些。',
      interrupted_title: '检测被中断',
      interrupted_text: '检测过程中页面被切到了后台。请保持页面在前台，重新开始。',
      passed_title: '认证通过',
      failed_title: '认证未通过',
      cancelled_title: '已取消认证',
      return: '返回商户',
      return_note_auto: '即将自动返回…',
      return_note_manual: '点下方按钮返回。',
      net_title: '网络连接失败',
      net_text: '无法连接到服务器。请检查网络后重试。',
      give_up: '放弃认证',
      error_title: '无法继续认证',
      show_result: '查看结果',
      back_to_app: '返回',
      system_error: '服务暂时不可用，请稍后重试。'
    },
    en: {
      app_title: 'Identity verification',
      lang_switch: '中文',
      lang_switch_label: '切换到中文',
      consent_title: 'Before you start',
      consent_intro: '{merchant} asks you to verify yourself: to confirm that a live person is here and that it is the person {merchant} named.',
      consent_what_h: 'What is collected',
      consent_what: 'Camera frames of your face during this check, and the name and ID number that {merchant} sent.',
      consent_intro_picture: '{merchant} asks you to verify yourself: to confirm that a live person is here and that it is the person in the photo {merchant} provided.',
      consent_what_picture: 'Camera frames of your face during this check, compared with the photo {merchant} provided.',
      consent_why_picture: 'Only to confirm that a live person is in front of the camera and that this person is the one in that photo. Nothing else.',
      consent_intro_liveness: '{merchant} asks you to confirm that a live person is in front of the camera.',
      consent_what_liveness: 'Camera frames of your face during this check.',
      consent_why_liveness: 'Only to confirm that a live person is in front of the camera. Nothing else.',
      consent_why_h: 'Why',
      consent_why: 'Only to confirm that a live person is in front of the camera and that this person matches that identity. Nothing else.',
      consent_keep_h: 'How long it is kept',
      consent_keep_reserve: 'A record of the decision is kept. At the request of {merchant}, one picture of your face is kept for {days} days; all other frames are deleted once the decision is made.',
      consent_keep_discard: 'A record of the decision is kept. The camera frames are deleted once the decision is made; no picture of your face is kept.',
      consent_who_h: 'Who decides about deletion',
      consent_who: '{merchant} controls this data and decides how long it is kept and when it is deleted. To see it or have it deleted, contact {merchant}.',
      consent_tips: 'Next, the page asks to use the front camera. Find good light and keep your whole face inside the circle.',
      agree: 'Agree and start',
      decline: 'Decline',
      cancel: 'Cancel verification',
      retry: 'Try again',
      camera_wait_title: 'Opening the camera…',
      camera_wait_text: 'If you are asked for permission, choose “Allow”.',
      denied_title: 'Camera access was refused',
      denied_text: 'The check needs the front camera, but access to it was refused. Allow this page to use the camera, then tap “Try again”:',
      denied_step_browser: 'Browser: tap the lock icon left of the address → Site settings → Camera → Allow.',
      denied_step_ios: 'iPhone: Settings → the browser or app you are using → Camera → on.',
      denied_step_android: 'Android: Settings → Apps → the browser or app you are using → Permissions → Camera → Allow.',
      denied_step_app: 'Inside an app, that app may also need camera access in its own settings.',
      missing_title: 'No camera found',
      missing_text: 'This device has no camera the page can use, or this browser cannot open it. Please use a phone with a front camera and open this page in its browser or app.',
      camerr_title: 'The camera could not start',
      camerr_text: 'Another app may be using the camera. Close other apps that use it and try again.',
      ready_title: 'Put your face in the circle',
      ready_text: 'Find good light and face the screen. Tap “Start” when ready, then follow the instructions on screen.',
      ready_attempts: 'Attempt {attempt} of {max}',
      start: 'Start',
      preparing: 'Getting ready…',
      step_baseline: 'Hold still',
      step_action: 'Action {i} of {n}',
      baseline: 'Look straight at the screen',
      act_open_mouth: 'Open your mouth',
      act_blink: 'Blink your eyes',
      act_turn_left: 'Turn your head to your left',
      act_turn_right: 'Turn your head to your right',
      uploading_title: 'Uploading…',
      upload_pct: '{pct}% uploaded',
      verifying_title: 'Verifying…',
      verifying_text: 'Please wait and keep this page open.',
      busy_title: 'Please wait…',
      retry_title: 'That attempt did not pass',
      retry_left: 'Try again ({left} left)',
      tip_light: 'Use even, bright light and avoid a bright window behind you.',
      tip_face: 'Keep your whole face inside the circle and uncovered.',
      tip_follow: 'Do each action when it is shown, clearly and fully.',
      interrupted_title: 'The check was interrupted',
      interrupted_text: 'The page went to the background during the check. Keep it open in front and start again.',
      passed_title: 'Verification passed',
      failed_title: 'Verification failed',
      cancelled_title: 'Verification cancelled',
      return: 'Return to merchant',
      return_note_auto: 'Returning automatically…',
      return_note_manual: 'Tap the button below to go back.',
      net_title: 'Connection failed',
      net_text: 'The server could not be reached. Check your network and try again.',
      give_up: 'Give up',
      error_title: 'Verification cannot continue',
      show_result: 'Show the result',
      back_to_app: 'Go back',
      system_error: 'The service is unavailable right now. Please try again later.'
    }
  };

  // ---------------------------------------------------------------------------------------------- config
  var app = document.getElementById('app');
  var d = app.dataset;
  function int(v, dflt) { var n = parseInt(v, 10); return isFinite(n) ? n : dflt; }
  var cfg = {
    channel: d.channel === 'miniprogram' ? 'miniprogram' : 'browser',
    certifyId: d.certifyId || '',
    merchant: d.merchantName || '',
    retentionDays: int(d.retentionDays, 0),
    reserve: d.reserve === 'true' || d.reserve === '1',
    consentKind: d.consentKind || 'identity',
    consentVersion: d.consentVersion || '',
    state: d.state || 'open',
    returnUrl: d.returnUrl || '',
    resultCode: d.resultCode || '',
    resultZh: d.resultMessageZh || '',
    resultEn: d.resultMessageEn || ''
  };
  var token = location.pathname.split('/').filter(Boolean).pop() || '';
  var base = '/h5/certify/' + encodeURIComponent(token) + '/';
  var lang = d.lang === 'en' ? 'en' : 'zh-CN';
  var vars = {
    merchant: cfg.merchant,
    days: cfg.retentionDays,
    max: int(d.maxAttempts, 3),
    left: int(d.attemptsLeft, int(d.maxAttempts, 3)),
    attempt: 1,
    i: 1, n: 1, pct: 0
  };
  vars.attempt = Math.max(1, vars.max - vars.left + 1);

  var ua = navigator.userAgent || '';
  var uaMiniProgram = /MiniProgram/i.test(ua) && /AlipayClient|Alipay/i.test(ua);

  function t(key) {
    var s = (STR[lang] && STR[lang][key]) || STR['zh-CN'][key] || key;
    return s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : String(vars[k]); });
  }
  function $(id) { return document.getElementById(id); }

  // ---------------------------------------------------------------------------------------------- rendering
  var screen = 'loading';
  var STAGE = { ready: 1, capture: 1 };

  function render() {
    document.documentElement.lang = lang;
    var nodes = document.querySelectorAll('[data-i18n]');
    for (var i = 0; i < nodes.length; i++) {
      var key = nodes[i].getAttribute('data-i18n');
      if (key === 'consent_keep') key = cfg.reserve ? 'consent_keep_reserve' : 'consent_keep_discard';
      // Products that name nobody have their own texts, which say nothing of names or ID numbers.
      if (cfg.consentKind !== 'identity' && STR['zh-CN'][key + '_' + cfg.consentKind]) key = key + '_' + cfg.consentKind;
      nodes[i].textContent = t(key);
    }
    $('lang').setAttribute('aria-label', t('lang_switch_label'));
    var msgs = document.querySelectorAll('.srvmsg');
    for (var j = 0; j < msgs.length; j++) {
      var m = msgs[j];
      m.textContent = (lang === 'en' ? m.getAttribute('data-en') : m.getAttribute('data-zh')) ||
        m.getAttribute('data-zh') || m.getAttribute('data-en') || '';
    }
    var notes = document.querySelectorAll('[data-role="return-note"]');
    for (var k = 0; k < notes.length; k++) notes[k].textContent = returnNote ? t(returnNote) : '';
    if (capturing) renderCapture(true);
    else if (screen === 'capture') {
      $('step-label').textContent = t('ready_attempts');
      $('instruction').textContent = countdownLeft > 0 ? String(countdownLeft) : t('preparing');
    }
    if (screen === 'uploading') $('upload-pct').textContent = t('upload_pct');
  }

  function show(id) {
    screen = id;
    app.setAttribute('data-screen', id);
    var all = app.querySelectorAll('.screen, .panel');
    for (var i = 0; i < all.length; i++) all[i].hidden = all[i].id !== id;
    $('stage').hidden = !STAGE[id];
    render();
    var h = $(id) && $(id).querySelector('h1');
    if (h && !STAGE[id]) { try { h.focus({ preventScroll: true }); } catch (e) { /* old browsers */ } }
    window.scrollTo(0, 0);
  }

  function setServerMessage(el, zh, en) {
    el.setAttribute('data-zh', zh || '');
    el.setAttribute('data-en', en || '');
  }

  // ---------------------------------------------------------------------------------------------- HTTP
  // XMLHttpRequest for upload progress; resolves {status, json}; status 0 = network failure or timeout.
  function post(path, body, timeoutMs, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open('POST', base + path, true);
      xhr.setRequestHeader('Content-Type', 'application/json');
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.timeout = timeoutMs;
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total, false); };
        xhr.upload.onload = function () { onProgress(1, true); };
      }
      xhr.onload = function () {
        var json = null;
        try { json = JSON.parse(xhr.responseText); } catch (e) { json = null; }
        resolve({ status: xhr.status, json: json });
      };
      xhr.onerror = function () { resolve({ status: 0, json: null }); };
      xhr.ontimeout = function () { resolve({ status: 0, json: null }); };
      xhr.onabort = function () { resolve({ status: 0, json: null }); };
      xhr.send(JSON.stringify(body));
    });
  }

  // ---------------------------------------------------------------------------------------------- back to the merchant
  var returnUrl = '';
  var hostResult = null;      // {resultStatus, result} for the mini-program host
  var posted = false;
  var leaving = false;
  var returnTimer = 0;
  var returnNote = '';

  function bridge() {
    var my = window.my;
    return my && typeof my.postMessage === 'function' ? my : null;
  }
  function isMiniProgram() { return cfg.channel === 'miniprogram' || uaMiniProgram || !!bridge(); }

  // In a mini-program web-view whose page was rendered for the browser channel, try to load the bridge late.
  if (uaMiniProgram && !bridge() && cfg.channel !== 'miniprogram') {
    var s = document.createElement('script');
    s.src = 'https://appx/web-view.min.js';
    document.head.appendChild(s);
  }

  function postToHost(res) {
    var my = bridge();
    if (!my || posted) return !!my;
    posted = true;
    try { my.postMessage(res); } catch (e) { /* the host may be gone */ }
    return true;
  }

  function goBack() {
    if (leaving) return;
    clearTimeout(returnTimer);
    var my = bridge();
    if (my && hostResult) {
      leaving = true;
      postToHost(hostResult);
      if (typeof my.navigateBack === 'function') my.navigateBack();
      return;
    }
    if (returnUrl && !/^\s*(javascript|data|vbscript):/i.test(returnUrl)) {
      leaving = true;
      location.href = returnUrl;
    }
  }

  // Show a final screen and schedule the way back (auto after delayMs unless 0).
  function finish(id, res, url, delayMs) {
    stopCamera();
    hostResult = res;
    returnUrl = url || '';
    var canReturn = !!returnUrl || isMiniProgram();
    returnNote = canReturn ? (delayMs ? 'return_note_auto' : 'return_note_manual') : '';
    var btns = $(id).querySelectorAll('[data-act="return"]');
    for (var i = 0; i < btns.length; i++) {
      btns[i].hidden = !canReturn;
      btns[i].setAttribute('data-i18n', bridge() ? 'back_to_app' : 'return');
    }
    show(id);
    if (delayMs && bridge()) postToHost(hostResult);   // the host learns the result even if the person leaves now
    if (delayMs && canReturn) returnTimer = setTimeout(goBack, delayMs);
  }

  function showResult(outcome, code, zh, en, res, url, delayMs) {
    var id = outcome === 'passed' ? 'result-passed' : 'result-failed';
    var el = $(id);
    setServerMessage(el.querySelector('[data-role="result-message"]'), zh, en);
    var c = el.querySelector('[data-role="result-code"]');
    if (c) c.textContent = outcome === 'passed' ? '' : (code || '');
    finish(id, res, url, delayMs);
  }

  // ---------------------------------------------------------------------------------------------- camera
  var video = $('video');
  var stream = null;

  function stopCamera() {
    if (stream) {
      stream.getTracks().forEach(function (tr) { try { tr.stop(); } catch (e) { /* already stopped */ } });
      stream = null;
    }
    video.srcObject = null;
  }
  function cameraLive() {
    if (!stream) return false;
    var tr = stream.getVideoTracks()[0];
    return !!tr && tr.readyState === 'live' && video.videoWidth > 0;
  }

  function openCamera() {
    if (screen === 'camera-wait') return;
    show('camera-wait');
    stopCamera();
    var md = navigator.mediaDevices;
    if (!md || typeof md.getUserMedia !== 'function') { show('camera-missing'); return; }
    md.getUserMedia({ video: { facingMode: 'user', width: { ideal: 640 }, height: { ideal: 480 } }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return new Promise(function (resolve, reject) {
          var done = false;
          var timer = setTimeout(function () { if (!done) { done = true; reject(new Error('video did not start')); } }, 8000);
          function check() {
            if (!done && video.videoWidth > 0 && video.readyState >= 2) { done = true; clearTimeout(timer); resolve(); }
          }
          video.addEventListener('loadeddata', check);
          video.addEventListener('playing', check);
          var p = video.play();
          if (p && p.catch) p.catch(function () { /* autoplay refused: muted+playsinline usually allows it */ });
          check();
        });
      })
      .then(function () { show('ready'); })
      .catch(function (e) {
        stopCamera();
        var name = (e && e.name) || 'Error';
        if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') show('camera-denied');
        else if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError' ||
                 name === 'ConstraintNotSatisfiedError') show('camera-missing');
        else {
          $('camera-error-name').textContent = name + (e && e.message ? ': ' + e.message : '');
          show('camera-error');
        }
      });
  }

  // ---------------------------------------------------------------------------------------------- challenge and capture
  var challenge = null;
  var capturing = false;
  var captureAbort = null;
  var countdownLeft = 0;
  var capPhase = '';
  var capIndex = -1;
  var netRetry = null;

  function newAttempt() {
    if (screen === 'capture' || screen === 'uploading' || screen === 'verifying') return;   // a double tap
    if (!cameraLive()) { openCamera(); return; }
    if (video.paused) { var pp = video.play(); if (pp && pp.catch) pp.catch(function () { /* shown paused */ }); }
    countdownLeft = 0;
    capturing = false;
    setStageColour(null);
    $('capture').setAttribute('data-phase', 'prepare');
    $('step-label').textContent = '';
    $('arrow').textContent = '';
    $('bar-fill').style.width = '0';
    show('capture');
    post('challenge', { consent_version: cfg.consentVersion }, 20000).then(function (r) {
      if (r.status === 200 && r.json && r.json.challenge_id) {
        challenge = r.json;
        if (challenge.attempt) vars.attempt = challenge.attempt;
        if (challenge.max_attempts) vars.max = challenge.max_attempts;
        countdown(3, runCapture);
      } else if (r.status === 0) {
        netError(newAttempt);
      } else {
        serverError(r);
      }
    });
  }

  function countdown(n, then) {
    $('capture').setAttribute('data-phase', 'countdown');
    countdownLeft = n;
    render();
    var timer = setInterval(function () {
      if (document.hidden) { clearInterval(timer); countdownLeft = 0; show('interrupted'); return; }
      countdownLeft -= 1;
      if (countdownLeft <= 0) { clearInterval(timer); countdownLeft = 0; then(); }
      else render();
    }, 700);
  }

  function setStageColour(rgb) {
    var st = $('stage');
    if (rgb) {
      st.style.backgroundColor = 'rgb(' + rgb[0] + ',' + rgb[1] + ',' + rgb[2] + ')';
      st.classList.add('flashing');
    } else {
      st.style.backgroundColor = '';
      st.classList.remove('flashing');
    }
  }

  function phaseAt(tms) {
    var ch = challenge;
    if (tms < ch.baseline_ms || !ch.actions.length) return { name: 'baseline', index: -1, frac: Math.min(1, tms / (ch.baseline_ms || 1)) };
    var k = Math.floor((tms - ch.baseline_ms) / ch.action_ms);
    k = Math.min(k, ch.actions.length - 1);
    return { name: ch.actions[k], index: k, frac: (tms - ch.baseline_ms - k * ch.action_ms) / ch.action_ms };
  }

  var ARROW = { turn_left: '\u2190', turn_right: '\u2192' };   // the preview is a mirror: own left is screen left

  function renderCapture(force, ph) {
    if (!challenge) return;
    ph = ph || phaseAt(capElapsed);
    if (force || ph.name !== capPhase || ph.index !== capIndex) {
      capPhase = ph.name; capIndex = ph.index;
      $('capture').setAttribute('data-phase', ph.index < 0 ? 'baseline' : 'action-' + (ph.index + 1));
      if (ph.index < 0) {
        $('step-label').textContent = t('step_baseline');
        $('instruction').textContent = t('baseline');
        $('arrow').textContent = '';
      } else {
        vars.i = ph.index + 1; vars.n = challenge.actions.length;
        $('step-label').textContent = t('step_action');
        $('instruction').textContent = t('act_' + ph.name);
        $('arrow').textContent = ARROW[ph.name] || '';
      }
    }
    $('bar-fill').style.width = Math.max(0, Math.min(100, ph.frac * 100)).toFixed(1) + '%';
  }

  var capElapsed = 0;

  function runCapture() {
    var ch = challenge;
    var fps = Math.max(1, Math.min(30, ch.fps || 8));
    var interval = 1000 / fps;
    var total = ch.baseline_ms + ch.actions.length * ch.action_ms;
    var vw = video.videoWidth, vh = video.videoHeight;
    if (!vw || !vh) { show('camera-error'); return; }
    var scale = Math.min(1, (ch.max_side || 480) / Math.max(vw, vh));
    var W = Math.max(2, Math.round(vw * scale)), H = Math.max(2, Math.round(vh * scale));
    var canvas = $('canvas');
    canvas.width = W; canvas.height = H;
    var ctx = canvas.getContext('2d');
    var quality = typeof ch.jpeg_quality === 'number' ? ch.jpeg_quality : 0.85;
    var flash = Array.isArray(ch.flash) ? ch.flash : [];
    var frames = [];
    var next = 0;
    var t0 = performance.now();
    var timer = 0;
    capturing = true;
    capPhase = ''; capIndex = -2; capElapsed = 0;

    function grab(tms) {
      ctx.drawImage(video, 0, 0, W, H);   // unmirrored: the canvas gets the camera's own picture
      var url = canvas.toDataURL('image/jpeg', quality);
      var comma = url.indexOf(',');
      frames.push({ t_ms: tms, jpeg: url.slice(comma + 1) });
    }
    function stop() { capturing = false; clearTimeout(timer); setStageColour(null); }

    captureAbort = function () { stop(); captureAbort = null; show('interrupted'); };

    function tick() {
      var el = performance.now() - t0;
      capElapsed = el;
      if (el >= total) {
        stop();
        captureAbort = null;
        upload({ challenge_id: ch.challenge_id, width: W, height: H, frames: frames });
        return;
      }
      var colour = null;
      for (var i = 0; i < flash.length; i++) {
        var f = flash[i];
        if (el >= f.start_ms && el < f.start_ms + f.ms) { colour = f.rgb; break; }
      }
      setStageColour(colour);
      renderCapture(false, phaseAt(el));
      if (el >= next) {
        grab(Math.round(el));
        next += interval;
        while (next <= el) next += interval;   // a late tick skips, it never bunches frames
      }
      var now = performance.now() - t0;
      var wait = Math.min(next, total) - now;
      // wake for the next frame, or sooner for a flash edge and a smooth progress bar
      timer = setTimeout(tick, Math.max(0, Math.min(wait, 16)));
    }
    tick();
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden && capturing && captureAbort) captureAbort();
  });

  function upload(body) {
    vars.pct = 0;
    $('upload-fill').style.width = '0';
    $('upload-bar').setAttribute('aria-valuenow', '0');
    show('uploading');
    post('attempt', body, 120000, function (frac, done) {
      vars.pct = Math.round(frac * 100);
      $('upload-fill').style.width = vars.pct + '%';
      $('upload-bar').setAttribute('aria-valuenow', String(vars.pct));
      if (done) show('verifying'); else render();
    }).then(function (r) {
      if (r.status === 0) { netError(function () { upload(body); }); return; }
      if (r.status !== 200 || !r.json || !r.json.outcome) { serverError(r); return; }
      var res = r.json;
      if (typeof res.attempts_left === 'number') vars.left = res.attempts_left;
      if (res.outcome === 'retry') {
        vars.attempt = Math.max(vars.attempt + 1, vars.max - vars.left + 1);
        setServerMessage($('retry-reason'), res.message_zh, res.message_en);
        $('retry-code').textContent = res.code || '';
        $('retry-btn').hidden = vars.left <= 0;
        show('retry');
        return;
      }
      var hres = res.result || {
        resultStatus: res.outcome === 'passed' ? '9000' : '4000',
        result: { certifyId: cfg.certifyId, errorCode: res.code || '' }
      };
      showResult(res.outcome, res.code, res.message_zh, res.message_en, hres, res.return_url, 2000);
    });
  }

  // ---------------------------------------------------------------------------------------------- cancel and errors
  function cancel() {
    if (screen === 'busy') return;
    stopCamera();
    show('busy');
    post('cancel', {}, 15000).then(function (r) {
      var res = (r.json && r.json.result) || { resultStatus: '6001', result: null };
      if (r.status === 200 && r.json) {
        finish('cancelled', res, r.json.return_url, 1200);
      } else if (bridge()) {
        // the host only needs to know the person cancelled; the server will expire the verification
        finish('cancelled', { resultStatus: '6001', result: null }, '', 1200);
      } else if (r.status === 0) {
        netError(cancel);
      } else {
        serverError(r);
      }
    });
  }

  function netError(retryFn) {
    netRetry = retryFn;
    $('give-up').hidden = !isMiniProgram();
    show('net-error');
  }

  function serverError(r) {
    var j = r.json || {};
    var code = j.code || (r.status ? 'HTTP_' + r.status : 'SYSTEM_ERROR');
    var el = $('error-message');
    if (j.message_zh || j.message_en) setServerMessage(el, j.message_zh, j.message_en);
    else setServerMessage(el, STR['zh-CN'].system_error, STR.en.system_error);
    $('error-code').textContent = code;
    var decided = code === 'ALREADY_DECIDED' || code === 'ATTEMPTS_EXHAUSTED';
    var fatal = code === 'TOKEN_INVALID' || code === 'SESSION_MISSING';
    $('error-retry').hidden = decided || fatal;
    $('error-reload').hidden = !decided;
    $('error-back').hidden = !isMiniProgram();
    hostResult = { resultStatus: '4000', result: { certifyId: cfg.certifyId, errorCode: code } };
    show('error');
  }

  // ---------------------------------------------------------------------------------------------- wiring
  $('lang').addEventListener('click', function () {
    lang = lang === 'en' ? 'zh-CN' : 'en';
    render();
  });
  $('agree').addEventListener('click', openCamera);
  $('decline').addEventListener('click', cancel);
  $('start').addEventListener('click', newAttempt);
  $('retry-btn').addEventListener('click', newAttempt);

  app.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('[data-act]') : null;
    if (!b || b.disabled) return;
    switch (b.getAttribute('data-act')) {
      case 'cancel': cancel(); break;
      case 'camera-retry': openCamera(); break;
      case 'new-attempt': newAttempt(); break;
      case 'net-retry': if (netRetry) netRetry(); break;
      case 'give-up':
        hostResult = { resultStatus: '6002', result: null };
        stopCamera();
        goBack();
        break;
      case 'error-back': stopCamera(); goBack(); break;
      case 'reload': location.reload(); break;
      case 'return': goBack(); break;
    }
  });

  // ---------------------------------------------------------------------------------------------- start
  if (cfg.state === 'passed' || cfg.state === 'failed') {
    // reopened after the decision: the result and the way back, without an automatic jump (no back-button loop)
    showResult(cfg.state, cfg.resultCode, cfg.resultZh, cfg.resultEn, {
      resultStatus: cfg.state === 'passed' ? '9000' : '4000',
      result: { certifyId: cfg.certifyId, errorCode: cfg.resultCode }
    }, cfg.returnUrl, 0);
  } else {
    show('consent');
  }
})();
