// The page of `sound2scene serve` in a real browser (Debian's Chromium, driven by
// playwright-core), against the real server and the bundled model:
//   1. upload: a sound picked in #audio-file draws exactly the picture `sound2scene generate`
//      draws for it with the same seed (every RGB value equal);
//   2. volume: moving #gain to +12 dB draws it again, and the picture changes;
//   3. live: the fake microphone plays a cow, then an engine (a WAV made here, looped by
//      Chromium); #live-start streams it and pictures arrive at about the hop rate, not all
//      the same;
//   4. mix: a second sound in #mix-file changes the picture; removing it brings step 2's back;
//   5. record: #record takes 4 s of the fake microphone, encodes a WAV in the page and draws it;
//   6. not a sound: a text file picked as the sound shows the server's error in #status;
//   7. overview: four pictures of the cow, the whole page as a screenshot.
// Each step saves a screenshot under target/browser-tests/.
//
// Run from anywhere, after `cargo build` (scripts/browser_tests.sh does it all):
//   node tests/browser/serve.test.mjs [--docs-screenshot docs/serve-page.png]
// Environment: SOUND2SCENE_BIN (default target/debug/sound2scene), CHROMIUM (default
// /usr/bin/chromium).

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.resolve(ROOT, process.env.SOUND2SCENE_BIN || 'target/debug/sound2scene');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'target/browser-tests');
const COW = path.join(ROOT, 'assets/sounds/field_cow.wav');
const ENGINE = path.join(ROOT, 'assets/sounds/engine.wav');
const WATER_BELL = path.join(ROOT, 'assets/sounds/water_bell.wav');

const TOTAL_MS = 180_000; // the whole run
const WAIT_MS = 60_000; // any one wait
const SERVER_START_MS = 60_000;
const LIVE_SECS = 8; // how long live frames are collected
const VIEWPORT = { width: 1000, height: 760 };

const argv = process.argv.slice(2);
const docsAt = argv.indexOf('--docs-screenshot');
const DOCS_SCREENSHOT = docsAt >= 0 ? path.resolve(argv[docsAt + 1] || 'docs/serve-page.png') : null;

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;

let server = null;
const serverLog = [];
let browser = null;
let page = null;
const pageErrors = [];

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

// ---------------------------------------------------------------------------------------------
// The server.

function startServer() {
  check(fs.existsSync(BIN), `${BIN} is missing: build it first (cargo build --workspace --locked)`);
  server = spawn(BIN, ['serve', '--addr', '127.0.0.1:0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Failure(`the server said nothing like "listening on http://..." in ${SERVER_START_MS / 1000} s`)),
      SERVER_START_MS,
    );
    const watch = (stream, name) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (data) => {
        const lines = (rest + data).split('\n');
        rest = lines.pop();
        for (const line of lines) {
          serverLog.push(`${name}: ${line}`);
          if (serverLog.length > 200) serverLog.shift();
          const match = line.match(/listening on (http:\/\/[^\s]+)/);
          if (match) {
            clearTimeout(timer);
            resolve(match[1].replace(/\/$/, ''));
          }
        }
      });
    };
    watch(server.stdout, 'stdout');
    watch(server.stderr, 'stderr');
    server.on('exit', (code, signal) => {
      serverLog.push(`(the server exited: ${signal || `code ${code}`})`);
      clearTimeout(timer);
      reject(new Failure(`the server exited (${signal || `code ${code}`}) before it listened`));
    });
    server.on('error', (err) => {
      clearTimeout(timer);
      reject(new Failure(`could not start ${BIN}: ${err.message}`));
    });
  });
}

async function stopServer() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// WAV files (plain 16-bit PCM, as the bundled sounds are).

function readWav(file) {
  const bytes = fs.readFileSync(file);
  check(bytes.toString('ascii', 0, 4) === 'RIFF' && bytes.toString('ascii', 8, 12) === 'WAVE', `${file} is not a WAV file`);
  let format = null;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        code: bytes.readUInt16LE(body),
        channels: bytes.readUInt16LE(body + 2),
        rate: bytes.readUInt32LE(body + 4),
        bits: bytes.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      check(format && format.code === 1 && format.bits === 16, `${file}: not 16-bit PCM`);
      const frames = Math.floor(Math.min(size, bytes.length - body) / (2 * format.channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < format.channels; c++) sum += bytes.readInt16LE(body + 2 * (i * format.channels + c));
        samples[i] = sum / format.channels / 32768;
      }
      return { rate: format.rate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Failure(`${file}: no data chunk`);
}

// `secs` of the sound at `rate`: repeated to length, resampled by linear interpolation.
function tileResample(sound, secs, rate) {
  const out = new Float32Array(Math.round(secs * rate));
  const n = sound.samples.length;
  for (let i = 0; i < out.length; i++) {
    const t = (i * sound.rate) / rate;
    const k = Math.floor(t);
    const f = t - k;
    out[i] = sound.samples[k % n] * (1 - f) + sound.samples[(k + 1) % n] * f;
  }
  return out;
}

function writeWav(file, samples, rate) {
  const bytes = Buffer.alloc(44 + samples.length * 2);
  bytes.write('RIFF', 0, 'ascii');
  bytes.writeUInt32LE(36 + samples.length * 2, 4);
  bytes.write('WAVEfmt ', 8, 'ascii');
  bytes.writeUInt32LE(16, 16);
  bytes.writeUInt16LE(1, 20); // PCM
  bytes.writeUInt16LE(1, 22); // mono
  bytes.writeUInt32LE(rate, 24);
  bytes.writeUInt32LE(rate * 2, 28);
  bytes.writeUInt16LE(2, 32);
  bytes.writeUInt16LE(16, 34);
  bytes.write('data', 36, 'ascii');
  bytes.writeUInt32LE(samples.length * 2, 40);
  samples.forEach((s, i) => bytes.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32767), 44 + 2 * i));
  fs.writeFileSync(file, bytes);
}

// The fake microphone's sound: ~5 s of the cow, then ~5 s of the engine, at 48 kHz.
function makeMicrophoneWav(file) {
  const rate = 48_000;
  const cow = tileResample(readWav(COW), 5, rate);
  const engine = tileResample(readWav(ENGINE), 5, rate);
  const both = new Float32Array(cow.length + engine.length);
  both.set(cow, 0);
  both.set(engine, cow.length);
  writeWav(file, both, rate);
}

// ---------------------------------------------------------------------------------------------
// The page.

async function screenshot(name) {
  const file = path.join(OUT, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`        screenshot: ${path.relative(ROOT, file)}`);
  return file;
}

// How many generate requests the page has completed (document.body.dataset.generated).
const generatedCount = () => page.evaluate(() => Number(document.body.dataset.generated || 0));

// Waits until at least `n` generate requests completed and none is in flight; checks the last
// one succeeded (or failed, with expect = 'error').
async function waitGenerated(n, what, expect = 'ok') {
  try {
    await page.waitForFunction(
      (n) => Number(document.body.dataset.generated || 0) >= n && !document.body.dataset.busy,
      n,
      { timeout: WAIT_MS, polling: 50 },
    );
  } catch {
    const status = await page.textContent('#status');
    throw new Failure(`${what}: no picture after ${WAIT_MS / 1000} s (#status: "${status}")`);
  }
  const state = await page.evaluate(() => ({
    outcome: document.body.dataset.outcome,
    generated: document.body.dataset.generated,
    status: document.getElementById('status').textContent,
  }));
  if (expect === 'ok') check(state.outcome === 'ok', `${what}: the request failed: "${state.status}"`);
  else check(state.outcome === 'error', `${what}: the request did not fail ("${state.status}")`);
  return state;
}

// RGB of the picture at `src` in the box (x, y, w, h), through a canvas, in the page.
function pixelsInPage() {
  return async ({ a, b, box }) => {
    const load = (src) =>
      new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`cannot decode ${src.slice(0, 40)}…`));
        img.src = src;
      });
    const rgba = (img, x, y, w, h) => {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext('2d', { willReadFrequently: true });
      g.drawImage(img, 0, 0);
      return g.getImageData(x, y, w, h).data;
    };
    const imgA = await load(a);
    const imgB = await load(b);
    const w = imgA.naturalWidth;
    const h = imgA.naturalHeight;
    const pa = rgba(imgA, 0, 0, w, h);
    const pb = rgba(imgB, box.x, box.y, w, h);
    let maxDiff = 0;
    let differing = 0;
    for (let i = 0; i < w * h; i++) {
      let d = 0;
      for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(pa[4 * i + c] - pb[4 * i + c]));
      if (d > 0) differing += 1;
      maxDiff = Math.max(maxDiff, d);
    }
    // The grid's border is white: a check that the picture was looked for at the right place.
    const corner = rgba(imgB, 0, 0, 1, 1);
    return {
      w,
      h,
      bw: imgB.naturalWidth,
      bh: imgB.naturalHeight,
      maxDiff,
      differing,
      cornerWhite: corner[0] === 255 && corner[1] === 255 && corner[2] === 255,
    };
  };
}

const pictureSources = () => page.$$eval('#pictures img.picture', (imgs) => imgs.map((img) => img.src));

// ---------------------------------------------------------------------------------------------
// The steps.

const context = { hopSecs: 0.5, step1Picture: null, step2Picture: null, tmp: null };

const steps = [
  {
    name: 'upload',
    async run() {
      const reference = path.join(context.tmp, 'reference.png');
      execFileSync(BIN, ['generate', '--audio', COW, '--seed', '3', '--count', '1', '--out', reference], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: WAIT_MS,
      });
      const referenceUrl = `data:image/png;base64,${fs.readFileSync(reference).toString('base64')}`;

      await page.fill('#seed', '3');
      await page.fill('#count', '1');
      await page.setInputFiles('#audio-file', COW);
      const state = await waitGenerated(1, 'upload');
      check(state.generated === '1', `upload: dataset.generated is ${state.generated}, not 1`);
      const sources = await pictureSources();
      check(sources.length === 1, `upload: ${sources.length} pictures shown, not 1`);
      check(sources[0].startsWith('data:image/png;base64,'), `upload: the picture is not a PNG data URL`);
      const cmp = await page.evaluate(pixelsInPage(), { a: sources[0], b: referenceUrl, box: { x: 2, y: 2 } });
      check(
        cmp.bw === cmp.w + 4 && cmp.bh === cmp.h + 4 && cmp.cornerWhite,
        `upload: the reference grid is ${cmp.bw}×${cmp.bh} (white corner: ${cmp.cornerWhite}); ` +
          `expected one ${cmp.w}×${cmp.h} picture with a 2 px white border`,
      );
      check(
        cmp.differing === 0,
        `upload: the page's picture differs from generate's: ${cmp.differing} of ${cmp.w * cmp.h} pixels, ` +
          `largest difference ${cmp.maxDiff} (of 255)`,
      );
      context.step1Picture = sources[0];
      await screenshot('01-upload.png');
      return `the page's ${cmp.w}×${cmp.h} picture equals generate --seed 3's exactly (${state.status})`;
    },
  },
  {
    name: 'volume',
    async run() {
      const before = await generatedCount();
      await page.fill('#gain', '12');
      const shown = await page.textContent('#gain-value');
      check(shown.trim() === '+12', `volume: #gain-value shows "${shown}", not "+12"`);
      const state = await waitGenerated(before + 1, 'volume');
      check(state.generated === String(before + 1), `volume: dataset.generated is ${state.generated}, not ${before + 1}`);
      const sources = await pictureSources();
      check(sources.length === 1, `volume: ${sources.length} pictures shown, not 1`);
      check(context.step1Picture, 'volume: needs the picture of step 1');
      const cmp = await page.evaluate(pixelsInPage(), { a: sources[0], b: context.step1Picture, box: { x: 0, y: 0 } });
      check(cmp.differing > 0, 'volume: the picture at +12 dB is pixel-identical to the one at 0 dB');
      context.step2Picture = sources[0];
      await screenshot('02-volume.png');
      return `+12 dB drew again: ${cmp.differing} of ${cmp.w * cmp.h} pixels changed (${state.status})`;
    },
  },
  {
    name: 'live',
    async cleanup() {
      if (await page.isEnabled('#live-stop')) await page.click('#live-stop');
    },
    async run() {
      await page.click('#live-start');
      try {
        await page.waitForFunction(() => window.__liveFrames.length > 0, null, { timeout: WAIT_MS, polling: 50 });
      } catch {
        const status = await page.textContent('#live-status');
        throw new Failure(`live: no frame in ${WAIT_MS / 1000} s (#live-status: "${status}")`);
      }
      const first = await page.evaluate(() => window.__liveFrames[0].receivedAt);
      await page.waitForTimeout(LIVE_SECS * 1000);
      const result = await page.evaluate((first) => {
        const frames = window.__liveFrames;
        return {
          total: frames.length,
          shown: document.getElementById('live-frames').textContent,
          status: document.getElementById('live-status').textContent,
          inWindow: frames.filter((f) => f.receivedAt > first).length,
          span: (frames[frames.length - 1].receivedAt - first) / 1000,
          distinct: new Set(frames.map((f) => f.image)).size,
          ordered: frames.every((f, i) => i === 0 || (f.index > frames[i - 1].index && f.time_secs > frames[i - 1].time_secs)),
          lastTime: frames[frames.length - 1].time_secs,
          skipped: frames[frames.length - 1].skipped,
          src: document.getElementById('live-picture').src,
          lastImage: frames[frames.length - 1].image,
        };
      }, first);
      await page.click('#live-stop');
      const rate = result.inWindow / LIVE_SECS;
      const wanted = Math.ceil((LIVE_SECS / context.hopSecs) * 0.5);
      console.log(
        `        live: ${result.inWindow} frames in ${LIVE_SECS} s after the first = ${rate.toFixed(2)} frames/s ` +
          `(hop ${context.hopSecs} s = ${(1 / context.hopSecs).toFixed(2)}/s); ${result.distinct} distinct of ` +
          `${result.total}; sound time ${result.lastTime} s; ${result.skipped} hops skipped`,
      );
      check(result.shown === String(result.total), `live: #live-frames shows "${result.shown}", ${result.total} frames came`);
      check(result.src === result.lastImage, 'live: #live-picture is not the last frame received');
      check(result.ordered, 'live: frame indices or times do not increase');
      check(
        result.inWindow >= wanted,
        `live: ${result.inWindow} frames in ${LIVE_SECS} s, fewer than ${wanted} (half the hop rate); #live-status: "${result.status}"`,
      );
      check(result.distinct >= 2, `live: all ${result.total} pictures are the same while the sound went from a cow to an engine`);
      const stopped = await page.evaluate(() => ({
        start: document.getElementById('live-start').disabled,
        stop: document.getElementById('live-stop').disabled,
      }));
      check(!stopped.start && stopped.stop, 'live: after #live-stop, Start is not enabled again');
      await screenshot('03-live.png');
      return `${result.inWindow} frames in ${LIVE_SECS} s (${rate.toFixed(2)}/s for a hop of ${context.hopSecs} s), ${result.distinct} distinct pictures`;
    },
  },
  {
    name: 'mix',
    async run() {
      check(context.step2Picture, 'mix: needs the picture of step 2');
      const before = await generatedCount();
      await page.setInputFiles('#mix-file', WATER_BELL);
      let state = await waitGenerated(before + 1, 'mix');
      let sources = await pictureSources();
      check(sources.length === 1, `mix: ${sources.length} pictures shown, not 1`);
      const mixed = await page.evaluate(pixelsInPage(), { a: sources[0], b: context.step2Picture, box: { x: 0, y: 0 } });
      check(mixed.differing > 0, 'mix: mixing in water and a bell left the picture pixel-identical');
      const mixedStatus = state.status;
      await screenshot('04-mix.png');
      await page.click('#mix-clear');
      state = await waitGenerated(before + 2, 'mix removed');
      sources = await pictureSources();
      const back = await page.evaluate(pixelsInPage(), { a: sources[0], b: context.step2Picture, box: { x: 0, y: 0 } });
      check(
        back.differing === 0,
        `mix: with the second sound removed the picture is not step 2's again (${back.differing} pixels differ)`,
      );
      return `water and a bell mixed in changed ${mixed.differing} pixels (${mixedStatus}); removed, step 2's picture came back exactly`;
    },
  },
  {
    name: 'record',
    async run() {
      const before = await generatedCount();
      await page.click('#record');
      const state = await waitGenerated(before + 1, 'record');
      const name = await page.textContent('#sound-name');
      check(/^recording\.wav · 4\.0 s$/.test(name.trim()), `record: the sound is "${name}", not a 4.0 s recording`);
      const sources = await pictureSources();
      check(sources.length === 1, `record: ${sources.length} pictures shown, not 1`);
      await screenshot('05-record.png');
      return `4 s from the microphone, encoded as WAV in the page, drew a picture (${state.status})`;
    },
  },
  {
    name: 'not a sound',
    async run() {
      const before = await generatedCount();
      await page.setInputFiles('#audio-file', {
        name: 'notes.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('this is not a sound\n'),
      });
      const state = await waitGenerated(before + 1, 'not a sound', 'error');
      const shown = await page.evaluate(() => ({
        error: document.getElementById('status').classList.contains('error'),
        pictures: document.querySelectorAll('#pictures img.picture').length,
      }));
      check(state.status.trim().length > 0 && !state.status.startsWith('drawing'), `not a sound: #status is "${state.status}"`);
      check(shown.error, 'not a sound: #status is not shown as an error');
      check(shown.pictures === 0, `not a sound: ${shown.pictures} old pictures still shown`);
      await screenshot('06-not-a-sound.png');
      return `the server's message is shown: "${state.status}"`;
    },
  },
  {
    name: 'overview',
    async run() {
      await page.fill('#count', '4');
      await page.fill('#gain', '0');
      await page.setInputFiles('#audio-file', COW);
      try {
        await page.waitForFunction(
          () =>
            !document.body.dataset.busy &&
            document.getElementById('sound-name').textContent.startsWith('field_cow.wav ·') &&
            document.querySelectorAll('#pictures img.picture').length === 4,
          null,
          { timeout: WAIT_MS, polling: 50 },
        );
      } catch {
        const status = await page.textContent('#status');
        throw new Failure(`overview: no four pictures of the cow after ${WAIT_MS / 1000} s (#status: "${status}")`);
      }
      const status = await page.textContent('#status');
      check(/^4 pictures in \d+ ms$/.test(status), `overview: #status is "${status}"`);
      const file = await screenshot('07-overview.png');
      if (DOCS_SCREENSHOT) {
        fs.copyFileSync(file, DOCS_SCREENSHOT);
        console.log(`        copied to ${path.relative(ROOT, DOCS_SCREENSHOT)}`);
      }
      return `four pictures of the cow (${status})`;
    },
  },
];

// ---------------------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  context.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sound2scene-browser-'));
  const micWav = path.join(OUT, 'live-input.wav');
  makeMicrophoneWav(micWav);

  const url = await startServer();
  console.log(`server: ${url} (${elapsed()})`);
  const info = await (await fetch(`${url}/api/info`)).json();
  if (info.live && info.live.hop_secs > 0) context.hopSecs = info.live.hop_secs;

  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (Debian: apt-get install chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: WAIT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${micWav}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const browserContext = await browser.newContext({ viewport: VIEWPORT, permissions: ['microphone'] });
  page = await browserContext.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // An error answer is logged by the browser too; the steps check the answers themselves.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  await page.goto(url);
  await page.waitForFunction(() => !document.getElementById('model-info').textContent.startsWith('asking'));

  let passed = 0;
  let failed = 0;
  for (const [i, step] of steps.entries()) {
    const t0 = Date.now();
    try {
      const summary = await step.run();
      passed += 1;
      console.log(`ok   ${i + 1} ${step.name}: ${summary} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
    } catch (err) {
      // The next steps still run: each waits for its own request, and one that needs an
      // earlier step's picture says so.
      failed += 1;
      console.log(`FAIL ${i + 1} ${step.name}: ${err instanceof Failure ? err.message : err.stack}`);
      await screenshot(`failed-${i + 1}-${step.name.replaceAll(' ', '-')}.png`).catch(() => {});
      if (step.cleanup) await step.cleanup().catch(() => {});
    }
  }
  console.log(`browser tests took ${elapsed()}`);
  console.log(`browser: ${passed} passed, ${failed} failed`);
  return failed === 0;
}

function report() {
  if (pageErrors.length) console.log(`the page's errors:\n  ${pageErrors.join('\n  ')}`);
  console.log(`the server's last lines:\n  ${serverLog.slice(-30).join('\n  ')}`);
}

const deadline = setTimeout(() => {
  console.log(`FAIL: the browser tests took over ${TOTAL_MS / 1000} s`);
  report();
  if (server) server.kill('SIGKILL');
  process.exit(1); // playwright closes the browser it launched on exit
}, TOTAL_MS);

let ok = false;
try {
  ok = await main();
} catch (err) {
  console.log(`FAIL: ${err instanceof Failure ? err.message : err.stack}`);
}
if (!ok) report();
clearTimeout(deadline);
if (browser) await browser.close().catch(() => {});
await stopServer();
if (context.tmp) fs.rmSync(context.tmp, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
