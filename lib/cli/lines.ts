/**
 * Input lines for `connect`: read from the start (so nothing typed before the connection opens
 * is lost), held until a sink is attached, then handed over as they come. Flow control is by
 * pausing the stream; the end of input is reported once, after the last line.
 */
import { createInterface, type Interface } from 'node:readline';

export interface LineSink {
  /** One line, without its line break. */
  line(text: string): void;
  /** The input ended (EOF); no line follows. */
  end(): void;
}

export class LineInput {
  private readonly reader: Interface;
  private held: string[] = [];
  private heldBytes = 0;
  private sink: LineSink | undefined;
  private ended = false;
  private detached = false;

  /** Holds at most about `highWater` bytes before a sink is attached (the stream is paused beyond). */
  constructor(
    input: NodeJS.ReadableStream,
    private readonly highWater: number,
  ) {
    this.reader = createInterface({ input, crlfDelay: Infinity, terminal: false });
    this.reader.on('line', (text: string) => this.onLine(text));
    this.reader.on('close', () => this.onEnd());
  }

  /** Hands the held lines (and the end, if it came) to `sink`, then every further line. */
  attach(sink: LineSink): void {
    if (this.detached) return;
    this.sink = sink;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const text of held) sink.line(text);
    if (this.ended) sink.end();
    else this.resume();
  }

  pause(): void {
    if (!this.ended) this.reader.pause();
  }

  resume(): void {
    if (!this.ended && !this.detached) this.reader.resume();
  }

  /** Stops reading: no line and no end are reported any more. */
  detach(): void {
    this.detached = true;
    this.sink = undefined;
    this.held = [];
    this.reader.close();
  }

  private onLine(text: string): void {
    if (this.detached || this.ended) return;
    if (this.sink !== undefined) return this.sink.line(text);
    this.held.push(text);
    this.heldBytes += Buffer.byteLength(text);
    if (this.heldBytes > this.highWater) this.reader.pause();
  }

  private onEnd(): void {
    if (this.detached || this.ended) return;
    this.ended = true;
    this.sink?.end();
  }
}
