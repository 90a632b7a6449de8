// Runs on the audio thread: gathers the microphone's 128-sample blocks into ~50 ms chunks.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Float32Array(Math.round(sampleRate / 20));
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0][0];
    if (input) {
      let at = 0;
      while (at < input.length) {
        const take = Math.min(input.length - at, this.chunk.length - this.filled);
        this.chunk.set(input.subarray(at, at + take), this.filled);
        this.filled += take;
        at += take;
        if (this.filled === this.chunk.length) {
          this.port.postMessage(this.chunk.slice(0));
          this.filled = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("capture", Capture);
