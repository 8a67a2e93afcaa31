// Drives shiren's hosted verification page in real headless Chromium (Debian's /usr/bin/chromium) through
// playwright-core, as a person on a phone would: consent, camera (a fake device fed from a Y4M file), start, retries,
// result, and the way back to the merchant (return_url, or the mini-program host bridge).
//
// Library:  const { runPage } = require('./h5.cjs');
//           const r = await runPage({ url, y4m: '/abs/clip.y4m', returnPrefix: 'http://127.0.0.1:9/back', screenshots: dir });
// CLI:      NODE_PATH=<sdk cache>/node/node_modules node tests/browser/h5.cjs '{"url":"…","y4m":"…"}'
//           prints progress on stderr and the result as JSON on the last line of stdout.
//
// Options:
//   url           the certify page (or anything that redirects to it)
//   y4m           absolute path of a Y4M clip for the fake camera (it loops); without it Chromium's own test pattern
//   denyCamera    the camera exists but permission is refused (→ NotAllowedError)
//   noCamera      no camera at all (→ NotFoundError)
//   miniprogram   serve a stand-in for the Alipay web-view bridge (https://appx/web-view.min.js) that records
//                 my.postMessage messages and my.navigateBack calls (in window.__host and in the result)
//   maxAttempts   press "try again" while it is offered and fewer attempts than this were made (default: always)
//   cancel        decline the consent (→ cancel)
//   netRetry      times to press "try again" on the network-error screen (default 0: stop there)
//   giveUp        on the network-error screen press "give up" (mini-program channel) instead
//   screenshots   a directory: a PNG of every screen reached (and of each capture phase), named NN-<screen>[-phase]
//   returnPrefix  stop when the page navigates to a URL starting with this; that URL is not loaded (answered with a
//                 stub page by the route) and is recorded as returnUrl
//   userAgent     an optional user agent for the phone context
//   viewport      {width, height} instead of 390×844 (e.g. 360×640)
//   timeoutMs     overall limit (default 90000)
//   log           true: progress lines on stderr
// Result: { returnUrl, hostMessages, hostNavigateBack, outcomes: [attempt responses], challenges, screens: [ids seen],
//           finalScreen, consoleErrors, timedOut }
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const CHROMIUM = process.env.SHIREN_CHROMIUM || '/usr/bin/chromium';
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

// The stand-in for Alipay's web-view bridge: just enough of `my` for the page.
const BRIDGE = `(function () {
  var host = window.__host = { messages: [], navigateBack: 0 };
  function report(kind, payload) { try { window.__shirenHost(kind, payload); } catch (e) {} }
  window.my = {
    postMessage: function (m) { var c = JSON.parse(JSON.stringify(m)); host.messages.push(c); report('message', c); },
    navigateBack: function () { host.navigateBack += 1; report('navigateBack', null); },
    getEnv: function (cb) { cb({ miniprogram: true }); }
  };
})();`;

const TERMINAL = new Set(['camera-denied', 'camera-missing', 'camera-error', 'error', 'interrupted']);
const FINAL = new Set(['result-passed', 'result-failed', 'cancelled']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runPage(opts) {
  const { chromium } = require('playwright-core');
  const o = { timeoutMs: 90000, netRetry: 0, ...opts };
  if (!o.url) throw new Error('runPage: url is required');
  const say = (...a) => { if (o.log) console.error('[h5]', ...a); };

  const args = [...BASE_ARGS];
  if (!o.noCamera) {
    args.push('--use-fake-device-for-media-stream');
    if (!o.denyCamera) args.push('--use-fake-ui-for-media-stream');
    if (o.y4m) args.push(`--use-file-for-fake-video-capture=${path.resolve(o.y4m)}`);
  }
  if (o.screenshots) fs.mkdirSync(o.screenshots, { recursive: true });

  const result = { returnUrl: null, hostMessages: [], hostNavigateBack: 0, outcomes: [], challenges: [], screens: [],
    finalScreen: null, consoleErrors: [], timedOut: false };
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  try {
    const context = await browser.newContext({
      viewport: o.viewport || { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1,
      permissions: o.denyCamera ? [] : ['camera'], locale: 'zh-CN',
      ...(o.userAgent ? { userAgent: o.userAgent } : {}),
    });
    if (o.miniprogram) {
      await context.exposeBinding('__shirenHost', (_src, kind, payload) => {
        if (kind === 'message') result.hostMessages.push(payload);
        if (kind === 'navigateBack') result.hostNavigateBack += 1;
        say('host', kind, payload ? JSON.stringify(payload) : '');
      });
      await context.route('https://appx/web-view.min.js', (route) =>
        route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: BRIDGE }));
    }
    if (o.returnPrefix) {
      await context.route((u) => u.href.startsWith(o.returnPrefix), (route) => {
        if (!result.returnUrl) result.returnUrl = route.request().url();
        say('return', route.request().url());
        return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8',
          body: '<!doctype html><title>returned</title><p>returned to the merchant</p>' });
      });
    }
    const page = await context.newPage();
    const pending = [];
    page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => result.consoleErrors.push(`pageerror: ${e.message}`));
    page.on('response', (r) => {
      const req = r.request();
      if (req.method() !== 'POST') return;
      const kind = (r.url().match(/\/h5\/certify\/[^/]+\/(challenge|attempt)$/) || [])[1];
      if (!kind) return;
      pending.push(r.json().then((j) => {
        if (kind === 'attempt') result.outcomes.push(j);
        else result.challenges.push(j);
        say(kind, r.status(), JSON.stringify(j).slice(0, 200));
      }, () => say(kind, r.status(), '(no JSON)')));
    });

    await page.goto(o.url, { waitUntil: 'domcontentloaded' });
    const startUrl = new URL(page.url());
    const deadline = Date.now() + o.timeoutMs;
    let shot = 0;
    let last = '';
    let lastShotKey = '';
    let netRetries = 0;
    let handled = '';
    let finalSince = 0;
    const screenshot = async (name) => {
      if (!o.screenshots) return;
      shot += 1;
      const file = path.join(o.screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path: file }).catch((e) => say('screenshot failed', e.message));
    };
    const click = async (sel) => { say('click', sel); await page.locator(sel).click({ timeout: 5000 }); };

    while (true) {
      if (Date.now() > deadline) { result.timedOut = true; say('timed out on', last); break; }
      if (result.returnUrl && o.returnPrefix) break;
      if (o.miniprogram && result.hostNavigateBack > 0) { await sleep(200); break; }   // the host took the page away
      let st;
      try {
        st = await page.evaluate(() => {
          const a = document.getElementById('app');
          if (!a) return null;
          const cap = document.getElementById('capture');
          const stage = document.getElementById('stage');
          return { screen: a.getAttribute('data-screen'), phase: cap ? cap.getAttribute('data-phase') : '',
            flashing: !!(stage && stage.classList.contains('flashing')),
            hostBack: window.__host ? window.__host.navigateBack : 0 };
        });
      } catch (e) {
        await sleep(50);   // navigating
        continue;
      }
      if (!st) {
        // not the hosted page any more: the browser went back to the merchant
        const now = page.url();
        const u = new URL(now);
        if (now !== 'about:blank' && (u.origin !== startUrl.origin || u.pathname !== startUrl.pathname)) {
          if (!result.returnUrl) result.returnUrl = now;
          await screenshot('returned');
          break;
        }
        await sleep(50);
        continue;
      }
      const screen = st.screen;
      if (screen !== last) {
        result.screens.push(screen);
        say('screen', screen);
        last = screen;
        handled = '';
      }
      // screenshots: one per screen entry, and per capture phase (countdown, baseline, each action, a flash)
      let key = `${result.screens.length}-${screen}`;
      let name = screen;
      if (screen === 'capture') {
        const ph = st.flashing ? `${st.phase}-flash` : st.phase;
        key += `-${ph}`;
        name += `-${ph}`;
      }
      if (key !== lastShotKey) {
        lastShotKey = key;
        await screenshot(name);
      }
      if (handled === screen) {
        if (FINAL.has(screen)) {
          if (o.miniprogram && (result.hostNavigateBack > 0 || st.hostBack > 0)) break;
          if (Date.now() - finalSince > 4000) {
            // the automatic way back did not happen: press the button as a person would
            finalSince = Date.now();
            if (await page.locator(`#${screen} [data-act="return"]`).isVisible()) await click(`#${screen} [data-act="return"]`);
            else break;
          }
        }
        await sleep(60);
        continue;
      }
      handled = screen;
      switch (screen) {
        case 'consent':
          result.consentText = await page.innerText('#consent');
          await click(o.cancel ? '#decline' : '#agree');
          break;
        case 'ready':
          await click('#start');
          break;
        case 'retry': {
          const offered = await page.locator('#retry-btn').isVisible();
          await Promise.all(pending);
          if (offered && (o.maxAttempts === undefined || result.outcomes.length < o.maxAttempts)) await click('#retry-btn');
          else { result.finalScreen = screen; return await finish(); }
          break;
        }
        case 'net-error':
          if (o.giveUp && await page.locator('#give-up').isVisible()) { await click('#give-up'); break; }
          if (netRetries < o.netRetry) { netRetries += 1; await click('#net-error [data-act="net-retry"]'); break; }
          result.finalScreen = screen;
          return await finish();
        default:
          if (FINAL.has(screen)) { finalSince = Date.now(); break; }
          if (TERMINAL.has(screen)) { result.finalScreen = screen; return await finish(); }
      }
    }
    return await finish();

    async function finish() {
      await Promise.all(pending);
      if (!result.finalScreen) result.finalScreen = last || null;
      return result;
    }
  } finally {
    await browser.close().catch(() => {});
  }
}

module.exports = { runPage };

if (require.main === module) {
  const opts = JSON.parse(process.argv[2] || '{}');
  runPage({ log: true, ...opts }).then((r) => {
    console.log(JSON.stringify(r));
  }, (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(2);
  });
}
