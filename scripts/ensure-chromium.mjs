// The browser tests (examples/browser's end-to-end test, @rs/report's render test) drive a
// headless Chromium. `npm test` calls this first: it finds Chromium (CHROMIUM_PATH, then the
// usual paths and PATH), installs Debian's `chromium` package with apt-get when none is found
// (as root, or through passwordless sudo), and otherwise stops with a message that says how.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium', '/snap/bin/chromium'];

function which(command) {
  try {
    return execSync(`command -v ${command}`, { stdio: ['ignore', 'pipe', 'ignore'], shell: '/bin/sh' }).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The path of a Chromium binary, or undefined. */
export function findChromium() {
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  return CANDIDATES.find((p) => existsSync(p)) ?? which('chromium') ?? which('chromium-browser');
}

/** Finds or installs Chromium; returns its path, or exits with a message saying how to get one. */
export function ensureChromium() {
  const found = findChromium();
  if (found) return found;
  if (process.env.CHROMIUM_PATH) {
    fail(`CHROMIUM_PATH is set to ${process.env.CHROMIUM_PATH}, which does not exist.`);
  }
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? '' : which('sudo') && canSudo() ? 'sudo -n ' : undefined;
  if (process.platform !== 'linux' || !which('apt-get') || sudo === undefined) {
    fail('no Chromium found, and it cannot be installed here automatically (that needs apt-get, as root or with passwordless sudo).');
  }
  console.log('[setup] installing Chromium for the browser tests (apt-get install chromium)');
  try {
    execSync(`${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq --no-install-recommends chromium`, {
      stdio: ['ignore', 'ignore', 'inherit'],
      shell: '/bin/sh',
    });
  } catch {
    fail('apt-get could not install the chromium package (see its message above).');
  }
  const installed = findChromium();
  if (!installed) fail('apt-get installed chromium, but no chromium binary was found afterwards.');
  return installed;
}

function canSudo() {
  try {
    execSync('sudo -n true', { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function fail(reason) {
  console.error(
    `[setup] The browser tests need Chromium: ${reason}\n` +
      '        Install it (Debian/Ubuntu: `sudo apt-get install chromium`), or set CHROMIUM_PATH to a Chromium or Chrome binary, then run `npm test` again.',
  );
  process.exit(1);
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(ensureChromium());
