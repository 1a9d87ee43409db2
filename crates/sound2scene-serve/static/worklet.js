// The microphone's samples, off the audio thread: an AudioWorkletProcessor that averages the
// channels of each render quantum (128 frames) into a mono buffer and posts it to the page
// every ~20 ms. The page batches these (~100 ms) before it sends or keeps them. Its output is
// left silent, so the node can sit on a path to the destination (which keeps it rendering).

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    // sampleRate is a global of the AudioWorkletGlobalScope.
    this.size = Math.max(128, Math.round(sampleRate * 0.02));
    this.buffer = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      // Mono: the average of the channels (a fake or built-in mic often gives one or two).
      const channels = input.length;
      const frames = input[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += input[c][i];
        this.buffer[this.filled++] = sum / channels;
        if (this.filled === this.size) {
          this.port.postMessage(this.buffer, [this.buffer.buffer]);
          this.buffer = new Float32Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
