// The operator console in real headless Chromium (Debian's /usr/bin/chromium) through playwright-core, as an
// operator uses it: login (wrong token refused, right token in), overview with its SVG charts and scene filter,
// search by certify_id and by outer_order_no (checks with scores and thresholds, masked name and ID number, the
// kept face image), deleting a verification's personal data with a confirmation, apps (create, disable, the gateway key), scenes (create with a liveness setting), POSTs without
// or with a wrong CSRF token refused, billing by month with the CSV download, logout.
//
// Run by tests/suite/console.rs with one JSON argument:
//   { url, token, certifyId, order, name, certNo, month, newAppPem, expect: {todayTotal, ...}, shots }
// Prints one line per check on stderr and the result JSON ({csv, grandTotal}) as the last line of stdout.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const o = JSON.parse(process.argv[2]);
let checks = 0;
function ok(cond, what, detail) {
  checks += 1;
  if (!cond) {
    console.error(`FAIL: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail).slice(0, 3000)}`);
    process.exit(1);
  }
  console.error(`ok: ${what}`);
}

(async () => {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.SHIREN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const consoleErrors = [];
  let n = 0;
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    const shot = async (name) => {
      n += 1;
      await page.screenshot({ path: path.join(o.shots, `${String(n).padStart(2, '0')}-${name}.png`), fullPage: true });
    };
    const num = async (sel) => (await page.locator(sel).innerText()).trim();

    // Login: the console sends a stranger to the login page; a wrong token is refused, the right one gets in.
    let resp = await page.goto(`${o.url}/console/overview`);
    ok(page.url().endsWith('/console/login'), 'not logged in: sent to the login page', page.url());
    ok((resp.headers()['content-security-policy'] || '').includes("default-src 'none'"), 'the console has a strict CSP');
    await shot('login');
    await page.fill('#token', 'not-the-token');
    [resp] = await Promise.all([page.waitForNavigation(), page.click('#login button[type=submit]')]);
    ok(resp.status() === 401 && (await page.innerText('body')).includes('Wrong admin token'), 'a wrong token is refused', resp.status());
    ok((await ctx.cookies()).length === 0, 'no session cookie after a refused login');
    await shot('login-refused');
    await page.fill('#token', o.token);
    await Promise.all([page.waitForNavigation(), page.click('#login button[type=submit]')]);
    ok(page.url().endsWith('/console/overview'), 'the admin token logs in', page.url());
    const cookie = (await ctx.cookies()).find((c) => c.name === 'shiren_console');
    ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/console', 'session cookie: HttpOnly, SameSite=Strict, path /console', cookie);
    ok(cookie.expires > Date.now() / 1000 && cookie.expires < Date.now() / 1000 + 9 * 3600, 'the session expires', cookie.expires);

    // Overview: numbers of today and the last 30 days, and the charts.
    ok(await num('#stats-today .tile:nth-child(1) .num') === String(o.expect.todayTotal), 'today: verifications', await num('#stats-today .tile:nth-child(1) .num'));
    ok(await num('#stats-today .tile:nth-child(2) .num') === String(o.expect.todayPassed), 'today: passed');
    ok(await num('#stats-month .tile:nth-child(1) .num') === String(o.expect.monthTotal), 'last 30 days: verifications');
    ok(await num('#stats-month .tile:nth-child(2) .num') === String(o.expect.monthPassed), 'last 30 days: passed');
    ok(await num('#stats-month .tile:nth-child(3) .num') === String(o.expect.monthFailed), 'last 30 days: failed');
    const rate = (100 * o.expect.monthPassed / (o.expect.monthPassed + o.expect.monthFailed)).toFixed(1).replace(/\.0$/, '');
    ok(await num('#stats-month .tile:nth-child(5) .num') === `${rate}%`, 'pass rate of the decided', [await num('#stats-month .tile:nth-child(5) .num'), rate]);
    ok(/^\d+ ms$/.test(await num('#stats-month .tile:nth-child(6) .num')) && /^\d+ ms$/.test(await num('#stats-month .tile:nth-child(7) .num')), 'p50 and p99 decision times');
    ok(await page.locator('#daily svg.chart g').count() === 30, 'the daily chart has 30 days of bars');
    const box = await page.locator('#daily svg.chart').boundingBox();
    ok(box && box.width > 600 && box.height > 150, 'the daily chart is drawn at a readable size', box);
    ok(await page.locator('#reasons svg.chart g').count() === 3, 'failure reasons chart: one bar per final reason');
    ok((await page.innerText('#reasons')).includes('LIVENESS_COLOUR_FLASH'), 'failure reasons are named');
    await shot('overview');
    await page.selectOption('#scene', '501');
    await Promise.all([page.waitForNavigation(), page.click('.heading form button')]);
    ok(page.url().includes('scene_id=501') && await num('#stats-month .tile:nth-child(1) .num') === String(o.expect.monthTotal), 'filtered by scene 501');
    await page.goto(`${o.url}/console/overview?scene_id=999`);
    ok(await num('#stats-month .tile:nth-child(1) .num') === '0', 'another scene has none');

    // Search by certify_id: state, product, scene, checks with scores and thresholds, attempts, masked identity.
    await page.goto(`${o.url}/console/verifications`);
    await page.fill('#q', o.certifyId);
    await Promise.all([page.waitForNavigation(), page.click('form.inline button')]);
    let text = await page.innerText('#verification');
    ok(text.includes(o.certifyId) && text.includes('passed') && text.includes('FACE') && text.includes('501'), 'search by certify_id finds it with state, product and scene');
    ok(await page.locator('#verification table.checks').first().locator('tbody tr').count() === 5, 'the decision\'s five checks');
    ok(text.includes('face_match') && text.includes('84.5') && text.includes('70'), 'checks show scores and thresholds');
    ok(!text.includes(o.name) && text.includes(o.name[0] + '**'), 'the name is masked', text.slice(0, 400));
    ok(!text.includes(o.certNo) && text.includes(o.certNo.slice(0, 6) + '********' + o.certNo.slice(-4)), 'the ID number is masked');
    ok(!(await page.content()).includes(o.certNo), 'the full ID number is nowhere in the page');
    const img = page.locator('#verification .face img');
    ok(await img.evaluate((e) => e.complete && e.naturalWidth === 96), 'the kept face image loads through the console');
    await shot('search-certify-id');
    await page.fill('#q', o.order);
    await Promise.all([page.waitForNavigation(), page.click('form.inline button')]);
    text = await page.innerText('#verification');
    ok(text.includes(o.certifyId) && text.includes(o.order), 'search by outer_order_no finds the same verification');
    await page.fill('#q', 'shared-order');
    await Promise.all([page.waitForNavigation(), page.click('form.inline button')]);
    ok(await page.locator('#results tbody tr').count() === 2, 'an order number used by two apps lists both');
    await shot('search-two-apps');
    await page.locator('#results tbody tr a').first().click();
    await page.waitForSelector('#verification');
    text = await page.innerText('#verification');
    ok(text.includes('shared-order') && text.includes('expired') && text.includes('No attempts'), 'a listed verification opens (undecided, expired, no attempts)', text.slice(0, 300));
    await page.fill('#q', 'no-such-thing');
    await Promise.all([page.waitForNavigation(), page.click('form.inline button')]);
    ok(await page.locator('#none').count() === 1, 'nothing found is said');
    // A failed one: its failed check and its retry.
    const failed = await page.request.get(`${o.url}/console/verifications?q=console-order-02`);
    const fhtml = await failed.text();
    ok(fhtml.includes('LIVENESS_ACTION_OPEN_MOUTH') && fhtml.includes('retry') && fhtml.includes('✗ fail'), 'a failed verification shows its failed check and the retry');
    const noFace = await page.request.get(`${o.url}/console/verifications/nothing/face.jpg`);
    ok(noFace.status() === 404, 'no image where none is kept', noFace.status());

    // Deletion on instruction: the button needs its confirmation ticked; afterwards the verdict stays and the
    // personal data is gone.
    await page.goto(`${o.url}/console/verifications?q=console-order-02`);
    ok(await page.locator('#delete').count() === 1, 'a verification with personal data offers its deletion');
    await page.click('#delete button');
    ok(page.url().includes('q=console-order-02') && await page.locator('#delete').count() === 1, 'without the confirmation nothing is sent');
    await shot('delete-confirm');
    await page.check('#delete input[name=confirm]');
    await Promise.all([page.waitForNavigation(), page.click('#delete button')]);
    text = await page.innerText('#verification');
    ok(await page.locator('#erased').count() === 1 && await page.locator('#delete').count() === 0, 'the page says the personal data is deleted', text.slice(0, 400));
    ok(!text.includes(o.name[0] + '**') && text.includes('LIVENESS_ACTION_OPEN_MOUTH'), 'name gone, verdict kept', text.slice(0, 600));
    await shot('deleted');
    const again = await page.request.post(`${o.url}/console/verifications/nothing/delete`, { form: { confirm: 'yes' } });
    ok(again.status() === 403, 'a delete without the CSRF token is refused', again.status());

    // Apps: the gateway key, create (a bad key is refused with a message), disable.
    await page.goto(`${o.url}/console/apps`);
    ok((await page.innerText('#gateway-key pre')).includes('BEGIN PUBLIC KEY'), 'the gateway public key is shown');
    await page.fill('#app_id', 'console_app');
    await page.fill('#name', '控制台新建');
    await page.fill('#public_key', 'not a key');
    await Promise.all([page.waitForNavigation(), page.click('#create-app button')]);
    ok((await page.innerText('.notice.err')).includes('public key'), 'a bad key is refused with a message');
    ok(await page.inputValue('#app_id') === 'console_app', 'the form keeps what was typed');
    await page.fill('#public_key', o.newAppPem);
    await page.fill('#return_urls', 'https://m.example/back\n');
    await Promise.all([page.waitForNavigation(), page.click('#create-app button')]);
    ok((await page.innerText('.notice.ok')).includes('created app console_app'), 'an app is created');
    const row = page.locator('#apps tr', { hasText: 'console_app' });
    ok((await row.innerText()).includes('active') && (await row.innerText()).includes('https://m.example/back'), 'the new app is listed, active');
    await Promise.all([page.waitForNavigation(), row.locator('button').click()]);
    ok((await page.locator('#apps tr', { hasText: 'console_app' }).innerText()).includes('disabled'), 'the app is disabled');
    await shot('apps');

    // Scenes: create one with strict liveness.
    await page.goto(`${o.url}/console/scenes`);
    await page.selectOption('#s_app', 'console_app');
    await page.fill('#s_name', '大额转账');
    await page.fill('#s_id', '777');
    await page.selectOption('#s_far', '1e-4');
    await page.fill('#s_att', '2');
    await page.selectOption('#s_live', 'strict');
    await Promise.all([page.waitForNavigation(), page.click('#create-scene button')]);
    ok((await page.innerText('.notice.ok')).includes('created scene 777'), 'a scene is created');
    let srow = page.locator('#scenes tbody tr', { hasText: '大额转账' });
    ok(/1e-4[\s\S]*2[\s\S]*strict/.test(await srow.innerText()), 'with its thresholds and strict liveness', await srow.innerText());
    await srow.locator('summary').click();
    await srow.locator('select[name=liveness]').selectOption('standard');
    await srow.locator('input[name=max_attempts]').fill('9');
    await shot('scene-edit');
    await Promise.all([page.waitForNavigation(), srow.locator('form button').click()]);
    ok(page.url().includes('/console/scenes') && (await page.innerText('.notice.err')).includes('1 to 5'), 'a bad update is refused with a message');
    srow = page.locator('#scenes tbody tr', { hasText: '大额转账' });
    await srow.locator('summary').click();
    await srow.locator('select[name=liveness]').selectOption('standard');
    await srow.locator('input[name=max_attempts]').fill('');
    await Promise.all([page.waitForNavigation(), srow.locator('form button').click()]);
    ok((await page.innerText('.notice.ok')).includes('updated scene 777'), 'the scene is updated');
    srow = page.locator('#scenes tbody tr', { hasText: '大额转账' });
    ok(/\(server\)[\s\S]*standard/.test(await srow.innerText()), 'back to the server\'s attempts, standard liveness', await srow.innerText());
    await shot('scenes');

    // POSTs without the session's CSRF token are refused (the session cookie alone is not enough).
    const form = { app_id: 'evil_app', name: 'evil', public_key: o.newAppPem };
    let r = await page.request.post(`${o.url}/console/apps`, { form });
    ok(r.status() === 403 && (await r.text()).includes('CSRF'), 'a POST without a CSRF token is refused', r.status());
    r = await page.request.post(`${o.url}/console/apps`, { form: { ...form, csrf: 'a'.repeat(64) } });
    ok(r.status() === 403, 'a POST with a wrong CSRF token is refused', r.status());
    r = await page.request.post(`${o.url}/console/apps/console_app/disable`, { form: {} });
    ok(r.status() === 403, 'disable without a CSRF token is refused', r.status());
    const apps = await (await page.request.get(`${o.url}/console/apps`)).text();
    ok(!apps.includes('evil_app'), 'nothing was created by them');

    // Billing of the month, and its CSV.
    await page.goto(`${o.url}/console/billing?month=${o.month}`);
    const grandTotal = Number(await num('#grand-total'));
    ok(grandTotal > 0, 'the month has billable events', grandTotal);
    ok(await page.locator('#totals tbody tr').count() >= 1, 'totals per app, scene, product and event');
    await shot('billing');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    ok(download.suggestedFilename() === `billing-${o.month}.csv`, 'the CSV is named after the month', download.suggestedFilename());
    const csv = fs.readFileSync(await download.path(), 'utf8');
    ok(csv.split('\n').filter((l) => l).length === grandTotal + 1, 'the CSV has a header and one row per billable event');
    r = await page.request.get(`${o.url}/console/billing?month=2026-13`);
    ok(r.status() === 400, 'a bad month is a 400, not a 500', r.status());

    // Logout ends the session, even for a copy of the cookie.
    await Promise.all([page.waitForNavigation(), page.click('.logout button')]);
    ok(page.url().endsWith('/console/login'), 'logged out');
    const replay = await fetch(`${o.url}/console/overview`, { headers: { cookie: `shiren_console=${cookie.value}` }, redirect: 'manual' });
    ok(replay.status === 303, 'the old session cookie no longer works', replay.status);
    await shot('logged-out');
    // Refused logins, bad requests and the absent favicon are expected "failed to load" lines; anything else
    // (a CSP violation, a script error) is not.
    const unexpected = consoleErrors.filter((e) => !/^Failed to load resource/.test(e));
    ok(unexpected.length === 0, 'no CSP violations or script errors', consoleErrors);
    console.error(`${checks} checks passed`);
    console.log(JSON.stringify({ csv, grandTotal, checks }));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
