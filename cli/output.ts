/** Output of the CLI commands that write through caller-given writers (probe, load). */

/**
 * The default writers hand the text to the process's stream; `flushed` resolves once it has all
 * gone to the OS. A pipe is asynchronous in Node on Linux, and cli/main.ts ends with
 * process.exit(), which would cut off what a slow reader has not taken yet (anything past the
 * 64 KiB a pipe holds, say a large -o json).
 */
export function writers(ctx: { readonly stdout?: (text: string) => void; readonly stderr?: (text: string) => void } = {}) {
  const pending: Promise<void>[] = [];
  const to = (stream: NodeJS.WriteStream) => (t: string) => void pending.push(new Promise<void>((resolve) => stream.write(t, () => resolve())));
  return {
    stdout: ctx.stdout ?? to(process.stdout),
    stderr: ctx.stderr ?? to(process.stderr),
    flushed: () => Promise.all(pending).then(() => undefined),
  };
}
