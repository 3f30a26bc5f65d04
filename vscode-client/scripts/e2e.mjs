#!/usr/bin/env node
// End-to-end check of the extension's protocol traffic without VS Code: spawns `llamita lsp`,
// sends the initialize request the extension sends (vscode-languageclient's capabilities from
// scripts/vscode-capabilities.json, initializationOptions from the extension's own settings code),
// answers workspace/configuration like the extension's middleware, opens a Python file and asks
// for an inline completion; optionally runs "Review current file" (llamita.reviewFile).
//
//   OLLAMA_HOST=http://127.0.0.1:11434 LLAMITA_E2E_MODEL=qwen2.5-coder:1.5b-base node scripts/e2e.mjs
//
// Environment:
//   OLLAMA_HOST               the llamita (or Ollama) server the language server talks to (required)
//   LLAMITA_E2E_MODEL         a FIM-capable model on that server (required)
//   LLAMITA_E2E_REVIEW_MODEL  a chat model: also run llamita.reviewFile and check its answer (optional)
//   LLAMITA_BIN               the llamita executable (default ../.venv/bin/llamita)
//   LLAMITA_E2E_TIMEOUT_S     overall limit in seconds (default 180)
//
// Needs `npm run build` first (it imports out/settings.js); `npm run e2e` does both.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  InitializeRequest,
  InitializedNotification,
  DidOpenTextDocumentNotification,
  DidChangeTextDocumentNotification,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ExecuteCommandRequest,
  ConfigurationRequest,
  WorkDoneProgressCreateRequest,
  RegistrationRequest,
  UnregistrationRequest,
  ShutdownRequest,
  ExitNotification,
  LogMessageNotification,
  ShowMessageNotification,
  PublishDiagnosticsNotification,
} = require('vscode-languageserver-protocol/node');

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const settingsModule = path.join(root, 'out', 'settings.js');
if (!fs.existsSync(settingsModule)) {
  fail(`${settingsModule} is missing: run \`npm run build\` (or \`npm run e2e\`)`);
}
const { readSettings, toServerSettings } = require(settingsModule);

const host = process.env.OLLAMA_HOST ?? '';
const model = process.env.LLAMITA_E2E_MODEL ?? '';
const reviewModel = process.env.LLAMITA_E2E_REVIEW_MODEL ?? '';
const bin = path.resolve(root, process.env.LLAMITA_BIN ?? path.join('..', '.venv', 'bin', 'llamita'));
const timeoutS = Number(process.env.LLAMITA_E2E_TIMEOUT_S ?? '180');
if (!host || !model) {
  fail('set OLLAMA_HOST (a running llamita server) and LLAMITA_E2E_MODEL (a FIM-capable model on it)');
}

const serverLog = [];

function fail(message) {
  if (serverLog.length > 0) {
    console.error('--- language server messages ---');
    console.error(serverLog.join('\n'));
  }
  console.error(`e2e FAILED: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) {
    fail(message);
  }
}

function step(message) {
  console.log(`e2e: ${message}`);
}

setTimeout(() => fail(`no result after ${timeoutS} s`), timeoutS * 1000).unref();

// The settings the extension would send for this user configuration (see src/settings.ts).
const userSettings = {
  serverUrl: host,
  completionModel: model,
  reviewModel,
  reviewOnSave: false,
  debounceMs: 0,
};
const initializationOptions = toServerSettings(readSettings({ get: (key) => userSettings[key] }), undefined);

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'llamita-e2e-'));
const file = path.join(workspace, 'calc.py');
const uri = pathToFileURL(file).href;
const text =
  'def add(a, b):\n    """Return the sum of a and b."""\n    return \n\n\ndef sub(a, b):\n    return a - b\n';
fs.writeFileSync(file, text);

step(`spawning ${bin} lsp (OLLAMA_HOST=${host}, model ${model})`);
const child = spawn(bin, ['lsp'], { cwd: workspace, stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
child.on('error', (error) => fail(`cannot start ${bin}: ${error.message}`));
child.stderr.on('data', (chunk) => serverLog.push(`[stderr] ${String(chunk).trimEnd()}`));
let exited = false;
child.on('exit', (code, signal) => {
  exited = true;
  if (!shuttingDown) {
    fail(`llamita lsp exited early (code ${code}, signal ${signal})`);
  }
});
let shuttingDown = false;

const connection = createProtocolConnection(
  new StreamMessageReader(child.stdout),
  new StreamMessageWriter(child.stdin),
);
const diagnostics = new Map();
let configurationRequests = 0;
connection.onRequest(ConfigurationRequest.type, (params) => {
  configurationRequests += 1;
  return params.items.map((item) => (item.section === 'llamita' ? initializationOptions : null));
});
connection.onRequest(WorkDoneProgressCreateRequest.type, () => null);
connection.onRequest(RegistrationRequest.type, () => null);
connection.onRequest(UnregistrationRequest.type, () => null);
connection.onNotification(LogMessageNotification.type, (p) => serverLog.push(`[log ${p.type}] ${p.message}`));
connection.onNotification(ShowMessageNotification.type, (p) => serverLog.push(`[show ${p.type}] ${p.message}`));
connection.onNotification(PublishDiagnosticsNotification.type, (p) => diagnostics.set(p.uri, p.diagnostics));
connection.onNotification('$/progress', () => undefined);
connection.listen();

const capabilities = JSON.parse(fs.readFileSync(path.join(here, 'vscode-capabilities.json'), 'utf8'));
const init = await connection.sendRequest(InitializeRequest.type, {
  processId: process.pid,
  clientInfo: { name: 'Visual Studio Code (llamita e2e)', version: '1.91.0' },
  locale: 'en',
  rootPath: workspace,
  rootUri: pathToFileURL(workspace).href,
  capabilities,
  initializationOptions,
  trace: 'off',
  workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: path.basename(workspace) }],
});
const caps = init.capabilities;
step(`initialized ${init.serverInfo?.name ?? '?'} ${init.serverInfo?.version ?? ''}`);
check(caps.inlineCompletionProvider, `no inlineCompletionProvider in ${JSON.stringify(caps)}`);
check(
  caps.executeCommandProvider?.commands?.includes('llamita.reviewFile'),
  'the server does not offer the llamita.reviewFile command',
);
await connection.sendNotification(InitializedNotification.type, {});

await connection.sendNotification(DidOpenTextDocumentNotification.type, {
  textDocument: { uri, languageId: 'python', version: 1, text },
});

// The cursor after `return ` on line 2; VS Code asks with Invoked (1) on Alt+\ and Automatic (2) while typing.
async function inlineCompletion(position, triggerKind) {
  return connection.sendRequest(InlineCompletionRequest.type, {
    textDocument: { uri },
    position,
    context: { triggerKind },
  });
}

let result = null;
for (let attempt = 1; attempt <= 3 && !(result?.items ?? result)?.length; attempt += 1) {
  result = await inlineCompletion({ line: 2, character: 11 }, InlineCompletionTriggerKind.Invoked);
  step(`inlineCompletion attempt ${attempt}: ${JSON.stringify(result)}`);
}
const items = Array.isArray(result) ? result : (result?.items ?? []);
check(items.length > 0, `no inline completion item: ${JSON.stringify(result)}`);
const [item] = items;
const insert = typeof item.insertText === 'string' ? item.insertText : item.insertText?.value;
check(typeof insert === 'string' && insert.trim() !== '', `empty insertText: ${JSON.stringify(item)}`);
if (item.range) {
  check(
    item.range.start.line === 2 && item.range.end.line === 2 && item.range.start.character <= 11,
    `the item's range is not on the cursor line: ${JSON.stringify(item.range)}`,
  );
}
step(`completion: ${JSON.stringify(insert)}`);

// Typing one character, as VS Code sends it: an incremental change, then an automatic request.
await connection.sendNotification(DidChangeTextDocumentNotification.type, {
  textDocument: { uri, version: 2 },
  contentChanges: [{ range: { start: { line: 2, character: 11 }, end: { line: 2, character: 11 } }, text: 'a' }],
});
const typed = await inlineCompletion({ line: 2, character: 12 }, InlineCompletionTriggerKind.Automatic);
check(
  typed === null || Array.isArray(typed) || Array.isArray(typed.items),
  `bad reply after typing: ${JSON.stringify(typed)}`,
);
step(`after typing: ${JSON.stringify(typed)}`);

if (reviewModel) {
  const review = await connection.sendRequest(ExecuteCommandRequest.type, {
    command: 'llamita.reviewFile',
    arguments: [uri],
  });
  step(`llamita.reviewFile: ${JSON.stringify(review)}`);
  check(review?.uri === uri && typeof review.diagnostics === 'number', `bad review answer: ${JSON.stringify(review)}`);
  check(
    (diagnostics.get(uri) ?? []).every((d) => d.source === 'llamita'),
    `diagnostics from another source: ${JSON.stringify(diagnostics.get(uri))}`,
  );
}

shuttingDown = true;
await connection.sendRequest(ShutdownRequest.type);
await connection.sendNotification(ExitNotification.type);
const deadline = Date.now() + 10000;
while (!exited && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
check(exited, 'llamita lsp did not exit after shutdown/exit');
connection.dispose();
fs.rmSync(workspace, { recursive: true, force: true });
step(`OK (workspace/configuration answered ${configurationRequests} time(s))`);
