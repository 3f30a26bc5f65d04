// Entry point: wires settings, status bar, language client and commands together.

import type { ExtensionContext } from 'vscode';

import { API_KEY_SECRET, commandHandlers } from './commands';
import { resolveExecutable } from './executable';
import { runProcess } from './pr';
import { createLanguageClient, LlamitaServer } from './server';
import { readSettings } from './settings';
import { StatusBar } from './status';
import { AcceptanceCounter } from './telemetry';
import * as api from './vscodeapi';

let server: LlamitaServer | undefined;
let summarize: (() => void) | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
  const log = api.createLogOutputChannel('llamita');
  const status = new StatusBar(api.createStatusItem(), api.errorBackground());
  const counter = new AcceptanceCounter(log);
  const settings = () => readSettings(api.configuration());
  const apiKey = () => context.secrets.get(API_KEY_SECRET);
  const llamita = new LlamitaServer({
    createClient: createLanguageClient,
    settings,
    apiKey,
    folders: api.folderPaths,
    resolve: resolveExecutable,
    log,
    status,
    offered: (languageId, items) => counter.offered(languageId, items),
  });
  server = llamita;
  summarize = () => log.info(`telemetry (local only): ${counter.summary()}`);
  const handlers = commandHandlers({
    ui: api.createUi(log),
    server: llamita,
    settings,
    updateSetting: api.updateSetting,
    secrets: context.secrets,
    resolve: resolveExecutable,
    run: runProcess,
    env: process.env,
    log,
    status,
    accepted: (languageId) => counter.accepted(languageId),
  });
  context.subscriptions.push(
    log,
    status,
    ...Object.entries(handlers).map(([id, handler]) => api.registerCommand(id, handler)),
    api.onDidChangeConfiguration((event) => llamita.onConfigurationChanged(event)),
    context.secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) {
        void llamita.pushSettings();
      }
    }),
  );
  await llamita.start();
}

export async function deactivate(): Promise<void> {
  summarize?.();
  await server?.dispose();
  server = undefined;
  summarize = undefined;
}
