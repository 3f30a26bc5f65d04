// Finding the `llamita` executable: the `llamita.path` setting, else the workspace's
// virtual environment, else PATH.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type Resolution =
  { ok: true; path: string; source: 'setting' | 'venv' | 'PATH' } | { ok: false; message: string };

export interface ExecutableEnv {
  isExecutable(file: string): boolean;
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  home: string;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    fs.accessSync(file, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export const nodeEnv: ExecutableEnv = {
  isExecutable: isExecutableFile,
  env: process.env,
  platform: process.platform,
  home: os.homedir(),
};

function venvCandidates(folder: string, platform: NodeJS.Platform): string[] {
  const p = platform === 'win32' ? path.win32 : path.posix;
  return platform === 'win32'
    ? [p.join(folder, '.venv', 'Scripts', 'llamita.exe')]
    : [p.join(folder, '.venv', 'bin', 'llamita')];
}

/** Every `<dir>/<name>` on PATH that is executable, in PATH order (with PATHEXT suffixes on Windows). */
function searchPath(name: string, env: ExecutableEnv): string | undefined {
  const p = env.platform === 'win32' ? path.win32 : path.posix;
  const dirs = (env.env.PATH ?? env.env.Path ?? '').split(p.delimiter).filter((d) => d !== '');
  const suffixes =
    env.platform === 'win32' && p.extname(name) === ''
      ? (env.env.PATHEXT ?? '.EXE;.CMD;.BAT')
          .split(';')
          .filter((e) => e !== '')
          .map((e) => e.toLowerCase())
      : [''];
  for (const dir of dirs) {
    for (const suffix of suffixes) {
      const candidate = p.join(dir, name + suffix);
      if (env.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** Expands `~` and `${workspaceFolder}` and anchors a relative path at the first workspace folder. */
export function expandConfiguredPath(configured: string, folders: readonly string[], env: ExecutableEnv): string {
  const p = env.platform === 'win32' ? path.win32 : path.posix;
  let value = configured.replace(/\$\{workspaceFolder\}/g, folders[0] ?? '');
  if (value === '~' || value.startsWith('~/')) {
    value = p.join(env.home, value.slice(1));
  }
  if (!p.isAbsolute(value) && folders[0] !== undefined && /[\\/]/.test(value)) {
    value = p.join(folders[0], value);
  }
  return value;
}

/**
 * The executable to run as `<exe> lsp`. A configured bare name (e.g. `llamita`) is looked up on
 * PATH; a configured path must exist. Without a setting: `<folder>/.venv/bin/llamita` for each
 * workspace folder in order, then PATH.
 */
export function resolveExecutable(
  configured: string,
  folders: readonly string[],
  env: ExecutableEnv = nodeEnv,
): Resolution {
  const p = env.platform === 'win32' ? path.win32 : path.posix;
  if (configured !== '') {
    const expanded = expandConfiguredPath(configured, folders, env);
    if (!p.isAbsolute(expanded)) {
      const found = searchPath(expanded, env);
      return found !== undefined
        ? { ok: true, path: found, source: 'setting' }
        : { ok: false, message: `llamita.path is "${configured}", which is not an executable on PATH` };
    }
    return env.isExecutable(expanded)
      ? { ok: true, path: expanded, source: 'setting' }
      : { ok: false, message: `llamita.path is "${configured}", but ${expanded} is not an executable file` };
  }
  for (const folder of folders) {
    const hit = venvCandidates(folder, env.platform).find((c) => env.isExecutable(c));
    if (hit !== undefined) {
      return { ok: true, path: hit, source: 'venv' };
    }
  }
  const hit = searchPath('llamita', env);
  if (hit !== undefined) {
    return { ok: true, path: hit, source: 'PATH' };
  }
  return {
    ok: false,
    message:
      'llamita was not found in the workspace .venv or on PATH: install it (`make serve` in a llamita checkout ' +
      'creates .venv/bin/llamita) or set llamita.path',
  };
}
