// A stand-in for shiren's hosted-page endpoints, for fast tests of the page itself (no database, no face engine).
// It renders templates/h5/certify.html the way the server does (variables substituted, HTML-escaped), serves the
// assets with the same Content-Security-Policy, and answers the three POST endpoints from a scenario chosen by the
// token (the last path segment):
//   pass…      first attempt passed          fail…    first attempt failed
//   retrypass… retry, then passed            retry3…  retry, retry, failed
//   neterr…    the first upload's connection is dropped, then passed
//   exhausted… the challenge is refused with ATTEMPTS_EXHAUSTED
//   decided-passed… / decided-failed…  the page is rendered already decided
//   invalid…   the page is the error page (TOKEN_INVALID)
// Query: ?channel=miniprogram, ?lang=en, ?reserve=0.
// Every upload is checked (challenge id, frame count and timing, JPEG data and size); a bad one is answered 400
// BAD_UPLOAD and recorded. Set MOCK_SAVE_DIR to keep the uploaded frames as .jpg files.
//
// Module: const { startMock } = require('./mock_server.cjs'); const m = await startMock(); m.url; m.log; m.close()
// CLI:    node tests/browser/mock_server.cjs [port]
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const ROOT = path.resolve(__dirname, '../../templates');
const CSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; " +
  "script-src 'self'; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

function escapeHtml(v) {
  return String(v).replace(/[&<>"'/]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '/': '&#x2F;' })[c]);
}

// Enough of tera for these templates: {% extends %} + {% block %}, {% if a %}/{% if a == "b" %}…{% else %}…{% endif %}
// (not nested), {{ var }}. An unknown variable is an error, as in tera.
function render(name, ctx) {
  let src = fs.readFileSync(path.join(ROOT, name), 'utf8');
  const ext = src.match(/^\s*\{%\s*extends\s+"([^"]+)"\s*%\}/);
  if (ext) {
    const blocks = {};
    src.replace(/\{%\s*block\s+(\w+)\s*%\}([\s\S]*?)\{%\s*endblock(?:\s+\w+)?\s*%\}/g, (m, b, body) => { blocks[b] = body; return ''; });
    src = fs.readFileSync(path.join(ROOT, ext[1]), 'utf8')
      .replace(/\{%\s*block\s+(\w+)\s*%\}([\s\S]*?)\{%\s*endblock(?:\s+\w+)?\s*%\}/g, (m, b, dflt) => (b in blocks ? blocks[b] : dflt));
  }
  const value = (k) => {
    if (!(k in ctx)) throw new Error(`template ${name}: variable ${k} not found in context`);
    return ctx[k];
  };
  src = src.replace(/\{%\s*if\s+(\w+)(?:\s*==\s*"([^"]*)")?\s*%\}([\s\S]*?)(?:\{%\s*else\s*%\}([\s\S]*?))?\{%\s*endif\s*%\}/g,
    (m, k, eq, yes, no) => {
      const v = value(k);
      const truth = eq === undefined ? Boolean(v) : String(v) === eq;
      return truth ? yes : (no || '');
    });
  if (/\{%/.test(src)) throw new Error(`template ${name}: a tag this mock does not know: ${src.match(/\{%[^%]*%\}/)[0]}`);
  return src.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, k) => escapeHtml(value(k)));
}

const SCENARIOS = {
  pass: ['passed'],
  fail: ['failed'],
  retrypass: ['retry', 'passed'],
  retry3: ['retry', 'retry', 'failed'],
  neterr: ['drop', 'passed'],
};
const ACTIONS = ['open_mouth', 'blink', 'turn_left', 'turn_right'];
const MESSAGES = {
  passed: ['PASSED', '认证通过，已确认是本人。', 'Verified: you are the person named.'],
  failed: ['LIVENESS_MOUTH', '没有检测到张嘴动作，认证未通过。', 'No open mouth was seen, so the check did not pass.'],
  retry: ['FACE_NOT_FOUND', '没有看清你的脸：请在光线充足处，让整张脸留在圆框内。', 'Your face was not clearly seen: find good light and keep your whole face inside the circle.'],
};

function scenarioOf(token) {
  const key = Object.keys(SCENARIOS).sort((a, b) => b.length - a.length).find((k) => token.startsWith(k));
  return key ? SCENARIOS[key] : SCENARIOS.retrypass;
}

function jpegSize(buf) {
  if (buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc3) return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    i += 2 + len;
  }
  return null;
}

function checkUpload(body, ch) {
  const problems = [];
  if (!body || body.challenge_id !== ch.challenge_id) problems.push('challenge_id');
  const frames = (body && body.frames) || [];
  const total = ch.baseline_ms + ch.actions.length * ch.action_ms;
  const expected = Math.ceil(total / (1000 / ch.fps));
  if (frames.length < expected - 3 || frames.length > expected + 1) problems.push(`frame count ${frames.length}, expected ≈${expected}`);
  let last = -1;
  const sizes = new Set();
  for (const f of frames) {
    if (!Number.isInteger(f.t_ms) || f.t_ms < 0 || f.t_ms > total || f.t_ms < last) { problems.push(`t_ms ${f.t_ms}`); break; }
    last = f.t_ms;
    if (typeof f.jpeg !== 'string' || f.jpeg.startsWith('data:')) { problems.push('jpeg not bare base64'); break; }
    const sz = jpegSize(Buffer.from(f.jpeg, 'base64'));
    if (!sz) { problems.push('not a JPEG'); break; }
    sizes.add(`${sz.width}x${sz.height}`);
    if (sz.width !== body.width || sz.height !== body.height) problems.push(`JPEG ${sz.width}x${sz.height} vs ${body.width}x${body.height}`);
  }
  if (Math.max(body.width || 0, body.height || 0) > ch.max_side) problems.push('larger than max_side');
  const gaps = frames.slice(1).map((f, i) => f.t_ms - frames[i].t_ms);
  return { problems, frames: frames.length, expected, width: body && body.width, height: body && body.height,
    first_ms: frames.length ? frames[0].t_ms : null, last_ms: last, max_gap_ms: gaps.length ? Math.max(...gaps) : null,
    bytes: frames.reduce((n, f) => n + (f.jpeg ? f.jpeg.length : 0), 0), sizes: [...sizes] };
}

function startMock({ port = 0, host = '127.0.0.1', onLog = null } = {}) {
  /** The consent text a token's product shows: tokens named `lrfr-…` are LR_FR, `pvfv-…` PV_FV, others name a person. */
function consentKind(token) {
  return token.startsWith('lrfr') ? 'liveness' : token.startsWith('pvfv') ? 'picture' : 'identity';
}

const sessions = new Map();   // token -> {attempts, step, plan, challenge, decided, cancelled}
  const log = [];
  if (onLog) log.push = (...items) => { items.forEach(onLog); return Array.prototype.push.apply(log, items); };
  const session = (token) => {
    if (!sessions.has(token)) sessions.set(token, { attempts: 0, step: 0, plan: scenarioOf(token), challenge: null, decided: null, cancelled: false });
    return sessions.get(token);
  };
  let base = '';

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (status, type, body, extra = {}) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
      res.end(body);
    };
    const json = (status, obj) => send(status, 'application/json', JSON.stringify(obj));
    const err = (status, code, zh, en) => json(status, { code, message_zh: zh, message_en: en });

    const asset = u.pathname.match(/^\/h5\/assets\/([\w.-]+)$/);
    if (req.method === 'GET' && asset) {
      const f = path.join(ROOT, 'h5/assets', asset[1]);
      if (!fs.existsSync(f)) return send(404, 'text/plain', 'not found');
      const type = f.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
      return send(200, type, fs.readFileSync(f), { 'X-Content-Type-Options': 'nosniff' });
    }
    const page = u.pathname.match(/^\/h5\/certify\/([\w-]+)$/);
    if (req.method === 'GET' && page) {
      const token = page[1];
      const mini = u.searchParams.get('channel') === 'miniprogram';
      const headers = {
        'Content-Security-Policy': mini ? CSP.replace("script-src 'self'", "script-src 'self' https://appx") : CSP,
        'Referrer-Policy': 'no-referrer', 'X-Content-Type-Options': 'nosniff',
      };
      if (token.startsWith('invalid')) {
        return send(404, 'text/html; charset=utf-8', render('h5/error.html', {
          lang: 'zh-CN', title: '链接已失效 / Link no longer valid',
          message: 'This verification link has expired or was already used. Please start again from the app.', code: 'TOKEN_INVALID',
        }), headers);
      }
      const s = session(token);
      const decided = token.startsWith('decided-passed') ? 'passed' : token.startsWith('decided-failed') ? 'failed' : s.decided;
      const m = decided ? MESSAGES[decided] : ['', '', ''];
      const cid = `cid-${token}`;
      return send(200, 'text/html; charset=utf-8', render('h5/certify.html', {
        lang: u.searchParams.get('lang') === 'en' ? 'en' : 'zh-CN',
        channel: mini ? 'miniprogram' : 'browser',
        certify_id: cid,
        merchant_name: '示例商户 Example Shop <&>',
        retention_days: 30,
        consent_kind: consentKind(token),
        consent_version: `2026-12-07.${consentKind(token)}`,
        reserve: u.searchParams.get('reserve') !== '0',
        max_attempts: 3,
        attempts_left: 3 - s.attempts,
        state: decided || 'open',
        return_url: decided ? `${base}/merchant/return?certify_id=${cid}` : '',
        result_code: m[0], result_message_zh: m[1], result_message_en: m[2],
      }), headers);
    }
    const api = u.pathname.match(/^\/h5\/certify\/([\w-]+)\/(challenge|attempt|cancel)$/);
    if (req.method === 'POST' && api) {
      const [, token, what] = api;
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const s = session(token);
        const cid = `cid-${token}`;
        if (req.headers['content-type'] !== 'application/json') return err(415, 'SYSTEM_ERROR', '请求格式错误', 'Bad request type');
        let body;
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'); } catch (e) { body = undefined; }
        if (body === undefined) return err(400, 'SYSTEM_ERROR', '请求格式错误', 'Bad request');
        if (s.decided || s.cancelled) return err(409, 'ALREADY_DECIDED', '本次认证已经结束。', 'This verification has already finished.');
        if (what === 'cancel') {
          s.cancelled = true;
          log.push({ token, what });
          return json(200, { return_url: `${base}/merchant/return?certify_id=${cid}`, result: { resultStatus: '6001', result: null } });
        }
        if (what === 'challenge') {
          // The page sends the version of the consent text the person agreed to, as the real server requires.
          const consent = body && body.consent_version;
          if (consent !== `2026-12-07.${consentKind(token)}`) {
            return err(400, 'CONSENT_REQUIRED', '请先阅读并同意认证说明。', 'Please agree to the notice first.');
          }
          if (token.startsWith('exhausted')) {
            return err(409, 'ATTEMPTS_EXHAUSTED', '尝试次数已用完。', 'No attempts are left.');
          }
          const acts = [...ACTIONS].sort(() => Math.random() - 0.5);
          const actions = ['open_mouth', acts.find((a) => a !== 'open_mouth')].sort(() => Math.random() - 0.5);
          s.challenge = {
            challenge_id: crypto.randomBytes(8).toString('hex'), attempt: s.attempts + 1, max_attempts: 3,
            actions, baseline_ms: 900, action_ms: 1200,
            flash: [{ rgb: [255, 0, 0], start_ms: 100, ms: 300 }, { rgb: [0, 255, 0], start_ms: 500, ms: 300 },
              { rgb: [0, 0, 255], start_ms: 900, ms: 300 }],
            fps: 8, max_side: 480, jpeg_quality: 0.85,
          };
          log.push({ token, what, challenge: s.challenge });
          return json(200, s.challenge);
        }
        // attempt
        if (!s.challenge) return err(409, 'SYSTEM_ERROR', '请先获取挑战', 'No challenge');
        const check = checkUpload(body, s.challenge);
        log.push({ token, what, check });
        if (process.env.MOCK_SAVE_DIR && body && body.frames) {
          const dir = path.join(process.env.MOCK_SAVE_DIR, `${token}-${s.attempts + 1}`);
          fs.mkdirSync(dir, { recursive: true });
          body.frames.forEach((f, i) => fs.writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}-${f.t_ms}.jpg`), Buffer.from(f.jpeg, 'base64')));
        }
        if (check.problems.length) return err(400, 'BAD_UPLOAD', '上传的数据有误：' + check.problems.join('; '), 'Bad upload: ' + check.problems.join('; '));
        const step = s.plan[Math.min(s.step, s.plan.length - 1)];
        s.step += 1;
        if (step === 'drop') {
          // the connection breaks after the answer began (a reset before it would be retried by the browser itself);
          // the challenge stays valid, so the page may re-send
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '1000' });
          res.write('{"outcome"');
          return setTimeout(() => req.socket.destroy(), 50);
        }
        s.attempts += 1;
        s.challenge = null;
        const left = 3 - s.attempts;
        const [code, zh, en] = MESSAGES[step];
        if (step === 'retry') return setTimeout(() => json(200, { outcome: 'retry', code, message_zh: zh, message_en: en, attempts_left: left }), 500);   // a decision takes a moment
        s.decided = step;
        return setTimeout(() => json(200, {
          outcome: step, code, message_zh: zh, message_en: en, attempts_left: left,
          return_url: `${base}/merchant/return?certify_id=${cid}`,
          result: { resultStatus: step === 'passed' ? '9000' : '4000', result: { certifyId: cid, errorCode: step === 'passed' ? '' : code } },
        }), 500);
      });
      return undefined;
    }
    if (req.method === 'GET' && u.pathname === '/merchant/return') {
      return send(200, 'text/html; charset=utf-8', `<!doctype html><title>merchant</title><p>back at the merchant: ${escapeHtml(u.search)}</p>`);
    }
    return send(404, 'text/plain', 'not found');
  });

  return new Promise((resolve) => {
    server.listen(port, host, () => {
      base = `http://${host}:${server.address().port}`;
      resolve({ url: base, port: server.address().port, log, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    });
  });
}

module.exports = { startMock, render };

if (require.main === module) {
  startMock({ port: Number(process.argv[2] || 0), onLog: (e) => console.error(JSON.stringify(e)) }).then((m) => console.log(m.url));
}
