/** Transforms that shape a byte stream in real time: hold the first chunk, or cap the rate. */
import { Transform, type TransformCallback } from 'node:stream';

/** Holds the first chunk for `delayMs`; everything after it flows as it comes (order is kept). */
export class DelayFirst extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private waited = false;

  constructor(private readonly delayMs: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.waited) {
      callback(null, chunk);
      return;
    }
    this.waited = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      callback(null, chunk);
    }, this.delayMs);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    callback(error);
  }
}

/**
 * Lets bytes through at no more than `bytesPerSecond`, in slices of about 50 ms worth. Each slice
 * leaves only once the time it "costs" has passed, so N bytes take at least N / rate seconds. Idle
 * time earns no credit: after a pause the rate is the same, not a burst.
 */
export class Throttle extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private nextAt = 0;
  private readonly slice: number;

  constructor(private readonly bytesPerSecond: number) {
    super();
    this.slice = Math.min(64 * 1024, Math.max(1, Math.floor(bytesPerSecond / 20)));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.sendFrom(chunk, 0, callback);
  }

  private sendFrom(chunk: Buffer, offset: number, callback: TransformCallback): void {
    if (offset >= chunk.length) {
      callback();
      return;
    }
    const piece = chunk.subarray(offset, offset + this.slice);
    const now = performance.now();
    this.nextAt = Math.max(now, this.nextAt) + (piece.length * 1000) / this.bytesPerSecond;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.push(piece);
        this.sendFrom(chunk, offset + piece.length, callback);
      },
      // Timers may fire up to 1 ms early; rounding up keeps the floor on elapsed time.
      Math.ceil(this.nextAt - now) + 1,
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    callback(error);
  }
}
