// "llamita: Generate PR description": runs `llamita pr --format markdown` in the workspace folder
// (the CLI reads the branch's diff with git and asks the model) and returns its stdout.

import { spawn } from 'node:child_process';

import type { Settings } from './settings';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  signal?: AbortSignal;
}

export type RunProcess = (file: string, args: readonly string[], options: RunOptions) => Promise<ProcessResult>;

/** Raised when `llamita pr` fails; the message is the CLI's own error line. */
export class PrError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'PrError';
  }
}

/** Runs a process without a shell and collects its output (utf-8). */
export const runProcess: RunProcess = (file, args, options) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env,
      signal: options.signal,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });

export function prArgs(settings: Pick<Settings, 'prModel' | 'reviewModel'>): string[] {
  const model = settings.prModel || settings.reviewModel;
  return ['pr', '--format', 'markdown', ...(model ? ['--model', model] : [])];
}

/** The CLI reads the server URL from OLLAMA_HOST and the key from LLAMITA_API_KEY. */
export function prEnv(
  base: Readonly<Record<string, string | undefined>>,
  settings: Pick<Settings, 'serverUrl'>,
  apiKey: string | undefined,
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base, NO_COLOR: '1' };
  if (settings.serverUrl) {
    env.OLLAMA_HOST = settings.serverUrl;
  }
  if (apiKey) {
    env.LLAMITA_API_KEY = apiKey;
  }
  return env;
}

function lastLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.at(-1) ?? '';
}

export interface DescribeRequest {
  executable: string;
  cwd: string;
  settings: Pick<Settings, 'prModel' | 'reviewModel' | 'serverUrl'>;
  apiKey: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  signal?: AbortSignal;
}

/** The markdown description of the current branch, or a PrError with the CLI's message. */
export async function describePr(run: RunProcess, request: DescribeRequest): Promise<string> {
  const result = await run(request.executable, prArgs(request.settings), {
    cwd: request.cwd,
    env: prEnv(request.env, request.settings, request.apiKey),
    signal: request.signal,
  });
  if (result.code !== 0) {
    const message = lastLine(result.stderr) || `llamita pr exited with code ${String(result.code)}`;
    throw new PrError(message.replace(/^Error:\s*/, ''), result.stderr);
  }
  if (result.stdout.trim() === '') {
    throw new PrError('llamita pr printed nothing', result.stderr);
  }
  return result.stdout;
}
