// The page of `sound2scene serve`: a sound (a file, a dropped file or 4 s from the microphone)
// goes to POST /api/generate and its pictures come back as data URLs; the volume slider, the
// seed, the count and a second sound to mix in draw it again. "Live" streams the microphone
// to the WebSocket /api/live and shows the picture the server sends every hop.
//
// For tests: document.body.dataset.generated counts the generate requests that completed
// (1, 2, ...; an error counts too, with dataset.outcome = "error"), dataset.busy is "1" while
// one is in flight, and window.__liveFrames holds the live frames received since the last
// start as {index, time_secs, image, skipped, receivedAt}.

const $ = (id) => document.getElementById(id);

const RECORD_SECS = 4;
// Live audio goes out in batches of about this many seconds (a few KiB each).
const LIVE_BATCH_SECS = 0.1;
// Audio is dropped rather than queued without end when the socket cannot keep up.
const LIVE_MAX_BUFFERED_BYTES = 4 << 20;
// Live frames kept on window.__liveFrames (the count shown goes on past it).
const LIVE_FRAMES_KEPT = 600;

const state = {
  info: null,
  sound: null, // the current sound, a File or Blob
  soundName: '',
  mix: null, // the second sound, or null
  request: null, // the AbortController of the generate request in flight
  generated: 0,
  recording: false,
  live: null, // the live session, see startLive
};

window.__liveFrames = [];

// ---------------------------------------------------------------------------------------------
// The server's model and limits.

async function loadInfo() {
  try {
    const response = await fetch('/api/info');
    const info = await response.json();
    state.info = info;
    const clip = Number(info.clip_secs);
    const hop = info.live && Number(info.live.hop_secs);
    $('model-info').textContent =
      `${info.resolution}×${info.resolution} pictures · sounds at ${info.sample_rate / 1000} kHz, ` +
      `${clip} s clips` + (hop ? ` · live: a picture every ${hop} s` : '');
    if (info.limits && info.limits.max_count) {
      $('count').max = String(info.limits.max_count);
    }
  } catch (err) {
    $('model-info').textContent = `could not ask the server about its model: ${err.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing a sound's scene.

function setStatus(text, isError = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function intField(id, fallback, min, max) {
  const value = Number.parseInt($(id).value, 10);
  if (!Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

// The seed is a u64: sent as the digits typed, so that large seeds keep every digit.
function seedValue() {
  const text = $('seed').value.trim();
  return /^\d+$/.test(text) ? text : '0';
}

function maxCount() {
  return (state.info && state.info.limits && state.info.limits.max_count) || 16;
}

function tooLarge(file) {
  const limit = state.info && state.info.limits && state.info.limits.max_upload_bytes;
  return limit && file.size > limit
    ? `${file.name || 'the sound'} is ${(file.size / 1048576).toFixed(1)} MiB; ` +
        `the server takes at most ${(limit / 1048576).toFixed(0)} MiB`
    : null;
}

// The body of an answer: JSON when it is JSON, otherwise its text as {error}.
async function readAnswer(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.trim() || `the server answered ${response.status} ${response.statusText}` };
  }
}

function setSound(file, name) {
  const problem = tooLarge(file);
  if (problem) {
    setStatus(problem, true);
    return;
  }
  state.sound = file;
  state.soundName = name || file.name || 'sound.wav';
  $('sound-name').textContent = state.soundName;
  const player = $('sound-player');
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(file);
  player.hidden = false;
  draw();
}

async function draw() {
  if (!state.sound) return;
  if (state.request) state.request.abort();
  const request = new AbortController();
  state.request = request;

  const count = intField('count', 1, 1, maxCount());
  const gainDb = intField('gain', 0, -60, 60);
  const form = new FormData();
  form.append('audio', state.sound, state.soundName);
  if (state.mix) {
    form.append('mix', state.mix, state.mix.name || 'mix.wav');
    form.append('mix_weight', $('mix-weight').value);
  }
  form.append('count', String(count));
  form.append('seed', seedValue());
  form.append('gain_db', String(gainDb));
  form.append('format', 'json');

  document.body.dataset.busy = '1';
  $('pictures').classList.add('stale');
  setStatus('drawing…');
  let outcome = 'ok';
  try {
    const response = await fetch('/api/generate', { method: 'POST', body: form, signal: request.signal });
    const answer = await readAnswer(response);
    if (!response.ok) {
      throw new Error(answer.error || `the server answered ${response.status}`);
    }
    const pictures = answer.images.map((src, i) => {
      const img = new Image(answer.width, answer.height);
      img.className = 'picture';
      img.alt = `scene ${i + 1} of ${state.soundName}`;
      img.title = `seed ${seedValue()}, picture ${i + 1}`;
      img.src = src;
      return img;
    });
    // Decoded before they are shown (and before a test reads their pixels).
    await Promise.all(pictures.map((img) => img.decode()));
    if (request.signal.aborted) return;
    $('pictures').replaceChildren(...pictures);
    const n = pictures.length;
    setStatus(`${n} picture${n === 1 ? '' : 's'} in ${Math.round(answer.elapsed_ms)} ms`);
    $('sound-name').textContent = `${state.soundName} · ${Number(answer.audio_secs).toFixed(1)} s`;
  } catch (err) {
    if (request.signal.aborted) return; // a newer request took over
    outcome = 'error';
    setStatus(err.message || String(err), true);
    $('pictures').replaceChildren(); // the old pictures are not this sound's
  }
  state.request = null;
  delete document.body.dataset.busy;
  $('pictures').classList.remove('stale');
  state.generated += 1;
  document.body.dataset.outcome = outcome;
  document.body.dataset.generated = String(state.generated);
}

// ---------------------------------------------------------------------------------------------
// The microphone: an AudioWorklet that posts Float32Array chunks of mono samples.

// Opens the microphone and calls onChunk(Float32Array) with its samples. The AudioContext is
// made first, while the click that asked for it still counts as a user gesture.
async function openMicrophone(onChunk) {
  const context = new AudioContext();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    await context.audioWorklet.addModule('/worklet.js');
  } catch (err) {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    context.close();
    throw new Error(`no microphone: ${err.message || err.name}`);
  }
  const source = context.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(context, 'pcm-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [1],
  });
  // A silent path to the destination keeps the node rendering.
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(capture).connect(mute).connect(context.destination);
  capture.port.onmessage = (event) => onChunk(event.data);
  await context.resume();
  return {
    sampleRate: context.sampleRate,
    close() {
      capture.port.onmessage = null;
      source.disconnect();
      capture.disconnect();
      stream.getTracks().forEach((track) => track.stop());
      context.close();
    },
  };
}

function concat(chunks, length) {
  const out = new Float32Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    const n = Math.min(chunk.length, length - offset);
    out.set(n === chunk.length ? chunk : chunk.subarray(0, n), offset);
    offset += n;
    if (offset === length) break;
  }
  return out;
}

// A 16-bit PCM mono WAV file of the samples.
function encodeWav(samples, sampleRate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true); // size of the fmt chunk
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, 'data');
  view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
  }
  return new Blob([view.buffer], { type: 'audio/wav' });
}

async function record() {
  if (state.recording) return;
  state.recording = true;
  const button = $('record');
  button.disabled = true;
  const chunks = [];
  let frames = 0;
  let mic;
  try {
    mic = await openMicrophone((chunk) => {
      chunks.push(chunk);
      frames += chunk.length;
    });
    const sampleRate = mic.sampleRate;
    const wanted = Math.round(RECORD_SECS * sampleRate);
    const started = performance.now();
    // Done when RECORD_SECS of samples are in (the countdown follows the samples, which start
    // flowing a moment after the microphone opens), or, should the microphone stall, a few
    // seconds after the time is up with what came.
    await new Promise((resolve) => {
      const tick = () => {
        const left = Math.ceil((wanted - frames) / sampleRate);
        button.textContent = `Recording… ${Math.max(left, 0)} s`;
        if (frames >= wanted || performance.now() - started > (RECORD_SECS + 4) * 1000) resolve();
        else setTimeout(tick, 50);
      };
      tick();
    });
    mic.close();
    mic = null;
    if (frames === 0) throw new Error('the microphone gave no sound');
    const samples = concat(chunks, Math.min(frames, wanted));
    const wav = encodeWav(samples, sampleRate);
    $('audio-file').value = ''; // the picked file is no longer the sound
    setSound(new File([wav], 'recording.wav', { type: 'audio/wav' }), 'recording.wav');
  } catch (err) {
    setStatus(err.message || String(err), true);
  } finally {
    if (mic) mic.close();
    state.recording = false;
    button.disabled = false;
    button.textContent = `Record ${RECORD_SECS} s`;
  }
}

// ---------------------------------------------------------------------------------------------
// Live: the microphone to /api/live, a picture back every hop.

function setLiveStatus(text, isError = false) {
  const status = $('live-status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function sendGainLive() {
  const live = state.live;
  if (live && live.ready && live.socket.readyState === WebSocket.OPEN) {
    live.socket.send(JSON.stringify({ gain_db: intField('gain', 0, -60, 60) }));
  }
}

async function startLive() {
  if (state.live) return;
  $('live-start').disabled = true;
  $('live-stop').disabled = false;
  window.__liveFrames = [];
  $('live-frames').textContent = '0';
  setLiveStatus('opening the microphone…');

  const live = { socket: null, mic: null, ready: false, frames: 0, pending: [], pendingFrames: 0, dropped: 0 };
  state.live = live;
  try {
    live.mic = await openMicrophone((chunk) => liveChunk(live, chunk));
  } catch (err) {
    stopLive(err.message, true);
    return;
  }
  if (state.live !== live) {
    live.mic.close(); // stopped while the microphone opened
    return;
  }

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/api/live`);
  socket.binaryType = 'arraybuffer';
  live.socket = socket;
  setLiveStatus('connecting…');
  socket.onopen = () => {
    socket.send(JSON.stringify({
      sample_rate: live.mic.sampleRate,
      channels: 1,
      count: 1,
      seed: Number(seedValue()),
      gain_db: intField('gain', 0, -60, 60),
    }));
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== 'string' || state.live !== live) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === 'ready') {
      live.ready = true;
      setLiveStatus(`listening (a picture every ${message.hop_secs} s of sound)`);
    } else if (message.type === 'frame') {
      liveFrame(live, message);
    } else if (message.type === 'error') {
      stopLive(message.error || 'the server refused the stream', true);
    }
  };
  socket.onerror = () => {
    if (state.live === live) stopLive('the live connection failed', true);
  };
  socket.onclose = (event) => {
    if (state.live === live) {
      stopLive(event.reason || `the server closed the connection (code ${event.code})`, true);
    }
  };
}

// Batches the microphone's chunks (~100 ms) and sends them as little-endian f32.
function liveChunk(live, chunk) {
  if (!live.ready || state.live !== live) return; // nothing is sent before "ready"
  live.pending.push(chunk);
  live.pendingFrames += chunk.length;
  if (live.pendingFrames < LIVE_BATCH_SECS * live.mic.sampleRate) return;
  const batch = concat(live.pending, live.pendingFrames);
  live.pending = [];
  live.pendingFrames = 0;
  if (live.socket.bufferedAmount > LIVE_MAX_BUFFERED_BYTES) {
    live.dropped += batch.length;
    return;
  }
  // Float32Array is in the platform's byte order; every browser's platform is little-endian,
  // but a big-endian one gets its bytes swapped.
  if (!LITTLE_ENDIAN) {
    const view = new DataView(batch.buffer);
    for (let i = 0; i < batch.length; i++) view.setFloat32(i * 4, batch[i], true);
  }
  live.socket.send(batch.buffer);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function liveFrame(live, message) {
  const image = message.images && message.images[0];
  if (!image) return;
  live.frames += 1;
  const picture = $('live-picture');
  picture.src = image;
  picture.hidden = false;
  $('live-placeholder').hidden = true;
  $('live-frames').textContent = String(live.frames);
  const frames = window.__liveFrames;
  frames.push({
    index: message.index,
    time_secs: message.time_secs,
    image,
    skipped: message.skipped,
    receivedAt: performance.now(),
  });
  if (frames.length > LIVE_FRAMES_KEPT) frames.splice(0, frames.length - LIVE_FRAMES_KEPT);
  const skipped = message.skipped ? ` · ${message.skipped} hop${message.skipped === 1 ? '' : 's'} skipped (server busy)` : '';
  setLiveStatus(`at ${Number(message.time_secs).toFixed(1)} s${skipped}`);
}

function stopLive(message = '', isError = false) {
  const live = state.live;
  state.live = null;
  if (live) {
    if (live.socket) {
      live.socket.onclose = null;
      live.socket.onerror = null;
      if (live.socket.readyState <= WebSocket.OPEN) live.socket.close(1000, 'stopped');
    }
    if (live.mic) live.mic.close();
  }
  $('live-start').disabled = false;
  $('live-stop').disabled = true;
  setLiveStatus(message || (live ? `stopped after ${live.frames} frame${live.frames === 1 ? '' : 's'}` : ''), isError);
}

// ---------------------------------------------------------------------------------------------
// The controls.

function wire() {
  const drop = $('drop');
  $('audio-file').addEventListener('change', (event) => {
    const file = event.target.files[0];
    if (file) setSound(file);
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (!file) return;
    try {
      $('audio-file').files = event.dataTransfer.files; // the picker names the dropped file
    } catch {
      // an older browser: the picker keeps its old name
    }
    setSound(file);
  });
  // A file dropped beside the drop zone is not opened by the browser in place of the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  $('record').addEventListener('click', record);
  $('seed').addEventListener('change', draw);
  $('count').addEventListener('change', draw);

  const gain = $('gain');
  const showGain = () => {
    const db = Number(gain.value);
    $('gain-value').textContent = db > 0 ? `+${db}` : String(db);
  };
  gain.addEventListener('input', () => {
    showGain();
    sendGainLive();
  });
  gain.addEventListener('change', () => {
    showGain();
    sendGainLive();
    draw();
  });
  showGain();

  const mixWeight = $('mix-weight');
  const showMixWeight = () => {
    $('mix-weight-value').textContent = Number(mixWeight.value).toFixed(2);
  };
  mixWeight.addEventListener('input', showMixWeight);
  mixWeight.addEventListener('change', () => {
    showMixWeight();
    if (state.mix) draw();
  });
  showMixWeight();
  $('mix-file').addEventListener('change', (event) => {
    const file = event.target.files[0] || null;
    const problem = file && tooLarge(file);
    if (problem) {
      setStatus(problem, true);
      return;
    }
    state.mix = file;
    $('mix-clear').hidden = !file;
    draw();
  });
  $('mix-clear').addEventListener('click', () => {
    $('mix-file').value = '';
    state.mix = null;
    $('mix-clear').hidden = true;
    draw();
  });

  $('live-start').addEventListener('click', startLive);
  $('live-stop').addEventListener('click', () => stopLive());
}

wire();
loadInfo();
