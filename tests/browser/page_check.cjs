// Fast checks of the hosted page alone, in real headless Chromium against mock_server.cjs (no shiren server, no
// face engine): every screen and way out the page has, the upload it makes, and the mini-program result contract.
//
//   NODE_PATH=<sdk cache>/node/node_modules node tests/browser/page_check.cjs [--y4m FILE] [--screenshots DIR]
// Prints one line per check; exits 1 on the first failure.
'use strict';
const path = require('node:path');
const { startMock } = require('./mock_server.cjs');
const { runPage } = require('./h5.cjs');

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const y4m = opt('--y4m');
const shots = opt('--screenshots');

let checks = 0;
function ok(cond, what, detail) {
  checks += 1;
  if (!cond) {
    console.log(`FAIL: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail).slice(0, 2000)}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const scriptErrors = (r) => r.consoleErrors.filter((e) => !/Failed to load resource|ERR_EMPTY_RESPONSE/.test(e));

(async () => {
  const mock = await startMock();
  const back = `${mock.url}/merchant/`;
  const run = (token, o = {}) => runPage({
    url: `${mock.url}/h5/certify/${token}${o.query || ''}`, returnPrefix: back, timeoutMs: 60000,
    screenshots: shots ? path.join(shots, token) : undefined, ...o,
  });
  const uploads = (token) => mock.log.filter((e) => e.token === token && e.what === 'attempt').map((e) => e.check);
  try {
    // retry, then passed, back to return_url
    let r = await run('retrypass-a', { y4m });
    ok(same(r.outcomes.map((o) => o.outcome), ['retry', 'passed']), 'retry then passed', r.outcomes);
    ok(r.returnUrl === `${back}return?certify_id=cid-retrypass-a`, 'went back to return_url', r.returnUrl);
    for (const s of ['consent', 'ready', 'capture', 'uploading', 'retry', 'result-passed']) ok(r.screens.includes(s), `screen #${s} seen`, r.screens);
    const up = uploads('retrypass-a');
    ok(up.length === 2 && up.every((c) => c.problems.length === 0), 'both uploads well formed (frame count, timing, JPEG size)', up);
    ok(up.every((c) => c.first_ms <= 20 && c.max_gap_ms <= 250 && Math.max(c.width, c.height) <= 480), 'frames start at 0 and come steadily', up);
    ok(r.challenges.length === 2 && r.challenges[1].attempt === 2, 'a new challenge for the retry', r.challenges);
    ok(scriptErrors(r).length === 0, 'no script or CSP errors', r.consoleErrors);

    // failed three times
    r = await run('retry3-b', { query: '?lang=en' });
    ok(same(r.outcomes.map((o) => o.outcome), ['retry', 'retry', 'failed']), 'three attempts, then failed', r.outcomes);
    ok(r.screens.includes('result-failed') && r.returnUrl, 'failed result, then back', r);

    // maxAttempts: stops at the retry screen
    r = await run('retry3-c', { maxAttempts: 1 });
    ok(r.finalScreen === 'retry' && r.outcomes.length === 1 && !r.returnUrl, 'maxAttempts 1 stops at #retry', r);

    // camera refused / missing
    r = await run('pass-d', { denyCamera: true });
    ok(r.finalScreen === 'camera-denied', 'camera refused: #camera-denied', r.screens);
    r = await run('pass-e', { noCamera: true });
    ok(r.finalScreen === 'camera-missing', 'no camera: #camera-missing', r.screens);

    // decline
    r = await run('pass-f', { cancel: true });
    ok(r.screens.includes('cancelled') && r.returnUrl === `${back}return?certify_id=cid-pass-f`, 'decline: cancelled and back', r);
    ok(mock.log.some((e) => e.token === 'pass-f' && e.what === 'cancel'), 'decline posted /cancel');

    // a dropped upload: network error, retry re-sends the same frames
    r = await run('neterr-g', { netRetry: 1 });
    ok(r.screens.includes('net-error') && r.screens.includes('result-passed') && r.returnUrl, 'network error, retry, passed', r.screens);

    // server errors
    r = await run('exhausted-h');
    ok(r.finalScreen === 'error', 'ATTEMPTS_EXHAUSTED: #error', r.screens);

    // reopened after the decision
    r = await run('decided-failed-i');
    ok(same(r.screens, ['result-failed']) && r.returnUrl, 'reopened failed: the result and the way back', r);

    // mini-program channel
    r = await run('pass-j', { query: '?channel=miniprogram', miniprogram: true, y4m });
    ok(same(r.hostMessages, [{ resultStatus: '9000', result: { certifyId: 'cid-pass-j', errorCode: '' } }]), 'mini-program: posts 9000', r.hostMessages);
    ok(r.hostNavigateBack === 1 && !r.returnUrl, 'mini-program: navigateBack, no return_url navigation', r);
    ok(scriptErrors(r).length === 0, 'mini-program: no script or CSP errors', r.consoleErrors);
    r = await run('fail-k', { query: '?channel=miniprogram', miniprogram: true });
    ok(r.hostMessages.length === 1 && r.hostMessages[0].resultStatus === '4000' && r.hostMessages[0].result.errorCode === 'LIVENESS_MOUTH', 'mini-program: posts 4000 with the errorCode', r.hostMessages);
    r = await run('pass-l', { query: '?channel=miniprogram', miniprogram: true, cancel: true });
    ok(same(r.hostMessages, [{ resultStatus: '6001', result: null }]) && r.hostNavigateBack === 1, 'mini-program: decline posts 6001', r.hostMessages);
    r = await run('neterr-m', { query: '?channel=miniprogram', miniprogram: true, giveUp: true });
    ok(same(r.hostMessages, [{ resultStatus: '6002', result: null }]) && r.hostNavigateBack === 1, 'mini-program: giving up after a network error posts 6002', r.hostMessages);
    r = await run('decided-passed-n', { query: '?channel=miniprogram', miniprogram: true });
    ok(r.hostMessages.length === 1 && r.hostMessages[0].resultStatus === '9000' && r.hostNavigateBack === 1, 'mini-program reopened: posts the result on return', r.hostMessages);

    // language switch and small screens, directly
    const { chromium } = require('playwright-core');
    const browser = await chromium.launch({ executablePath: process.env.SHIREN_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    try {
      for (const vp of [{ width: 390, height: 844 }, { width: 360, height: 640 }]) {
        const ctx = await browser.newContext({ viewport: vp, isMobile: true, hasTouch: true });
        const page = await ctx.newPage();
        const errors = [];
        page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
        await page.goto(`${mock.url}/h5/certify/pass-lang`);
        await page.waitForSelector('#consent:not([hidden])');
        const zh = await page.textContent('#consent h1');
        await page.click('#lang');
        const en = await page.textContent('#consent h1');
        ok(/[\u4e00-\u9fff]/.test(zh) && /^[\x20-\x7e]+$/.test(en) && (await page.getAttribute('html', 'lang')) === 'en', `${vp.width}x${vp.height}: the language switch`, { zh, en });
        const keep = await page.textContent('#consent dd:nth-of-type(3)');
        ok(/30 days/.test(keep), 'consent says the face image is kept 30 days when reserved', keep);
        const merchant = await page.textContent('#consent .lead');
        ok(merchant.includes('Example Shop <&>'), 'the merchant name is shown as text, escaped', merchant);
        for (const sel of ['#agree', '#decline', '#lang']) {
          const b = await page.locator(sel).boundingBox();
          ok(b && b.y >= 0 && b.y + b.height <= vp.height && b.x >= 0 && b.x + b.width <= vp.width, `${vp.width}x${vp.height}: ${sel} on screen without scrolling`, b);
        }
        ok(errors.length === 0, 'no console errors on the consent', errors);
        // The text matches the product: LR_FR and PV_FV collect no name or ID number and do not speak of them.
        for (const [token, shows] of [['lrfr-consent', false], ['pvfv-consent', false], ['pass-consent', true]]) {
          for (const lang of ['zh-CN', 'en']) {
            await page.goto(`${mock.url}/h5/certify/${token}?lang=${lang}`);
            await page.waitForSelector('#consent:not([hidden])');
            const text = await page.innerText('#consent');
            const names = /姓名|身份证|\bname\b|ID number/.test(text);
            ok(names === shows, `${vp.width}x${vp.height}: ${token} (${lang}) consent ${shows ? 'names' : 'does not name'} the name and ID number`, text);
            if (vp.width === 390 && shots) await page.screenshot({ path: path.join(shots, `consent-${token}-${lang}.png`) });
          }
        }
        await ctx.close();
      }
      const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
      const page = await ctx.newPage();
      await page.goto(`${mock.url}/h5/certify/pass-o?reserve=0`);
      await page.waitForSelector('#consent:not([hidden])');
      const keep = await page.textContent('#consent dd:nth-of-type(3)');
      ok(/删除/.test(keep) && !/30/.test(keep), 'consent without reserve: frames deleted, no retention days', keep);
      await ctx.close();
    } finally {
      await browser.close();
    }
    console.log(`all ${checks} checks passed`);
  } finally {
    await mock.close();
  }
})().catch((e) => {
  console.log(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
