// Thin wrappers over the vscode API: the only module besides extension.ts that calls into
// `vscode` directly, so everything else can be driven by fakes in the unit tests.

import * as vscode from 'vscode';

import type { ActiveDocument, Ui } from './commands';
import { SECTION } from './settings';
import type { StatusItemLike } from './status';

export function configuration(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

export function updateSetting(key: string, value: unknown): PromiseLike<void> {
  return configuration().update(key, value, vscode.ConfigurationTarget.Global);
}

export function onDidChangeConfiguration(
  listener: (event: vscode.ConfigurationChangeEvent) => unknown,
): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration(listener);
}

export function folderPaths(): string[] {
  return (vscode.workspace.workspaceFolders ?? [])
    .filter((folder) => folder.uri.scheme === 'file')
    .map((folder) => folder.uri.fsPath);
}

export function registerCommand(id: string, handler: (...args: unknown[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, handler);
}

export function createLogOutputChannel(name: string): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel(name, { log: true });
}

export function createStatusItem(): StatusItemLike & vscode.Disposable {
  const item = vscode.window.createStatusBarItem('llamita.status', vscode.StatusBarAlignment.Right, 100);
  item.name = 'llamita';
  return item;
}

export function errorBackground(): vscode.ThemeColor {
  return new vscode.ThemeColor('statusBarItem.errorBackground');
}

function activeDocument(): ActiveDocument | undefined {
  const document = vscode.window.activeTextEditor?.document;
  if (document === undefined) {
    return undefined;
  }
  const folder = vscode.workspace.getWorkspaceFolder(document.uri);
  return {
    uri: document.uri.toString(),
    fileName: document.fileName,
    folder: folder?.uri.scheme === 'file' ? folder.uri.fsPath : undefined,
  };
}

/** The Ui the command handlers use; `showLog` reveals the llamita output channel. */
export function createUi(log: vscode.LogOutputChannel): Ui {
  return {
    activeDocument,
    folders: folderPaths,
    askSecret: (prompt) => vscode.window.showInputBox({ prompt, password: true, ignoreFocusOut: true }),
    info: (message) => void vscode.window.showInformationMessage(message),
    error: (message) => {
      void vscode.window.showErrorMessage(message, 'Show log').then((choice) => {
        if (choice === 'Show log') {
          log.show(true);
        }
      });
    },
    openMarkdown: async (content) => {
      const document = await vscode.workspace.openTextDocument({ language: 'markdown', content });
      await vscode.window.showTextDocument(document, { preview: false });
    },
    withProgress: (title, task) =>
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        (_progress, token) => {
          const controller = new AbortController();
          const subscription = token.onCancellationRequested(() => controller.abort());
          return task(controller.signal).finally(() => subscription.dispose());
        },
      ),
    showLog: () => log.show(true),
    executeCommand: (command, ...args) => vscode.commands.executeCommand(command, ...args),
  };
}
