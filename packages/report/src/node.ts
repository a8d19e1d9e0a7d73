/**
 * @rs/report/node: the Node-only part of @rs/report. `renderReport` inlines the charting
 * libraries (vega, vega-lite, vega-embed) read from node_modules, so the page needs no network.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { RsError } from '@rs/core';
import { renderReportHtml, type VegaLibraries } from './html';
import type { ReportData } from './types';

let cached: VegaLibraries | undefined;

/** The UMD builds of vega, vega-lite and vega-embed that this package depends on, read once. */
export function readVegaLibraries(): VegaLibraries {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  // The packages' export maps hide build/*.min.js; their entries live in build/, next to them.
  const read = (name: string, file: string): string => {
    let entry: string;
    try {
      entry = require.resolve(name);
    } catch (cause) {
      throw new RsError('INVALID_ARGUMENT', `renderReport: cannot find the '${name}' package (a dependency of @rs/report); reinstall dependencies.`, { cause: String(cause) });
    }
    return readFileSync(join(dirname(entry), file), 'utf8');
  };
  cached = { vega: read('vega', 'vega.min.js'), vegaLite: read('vega-lite', 'vega-lite.min.js'), vegaEmbed: read('vega-embed', 'vega-embed.min.js') };
  return cached;
}

/**
 * Renders report data as one self-contained HTML page (about 1 MB: the charting libraries are
 * inlined; no network request is made or allowed when it is opened).
 *
 * @example
 * import { collectReport } from '@rs/report';
 * import { renderReport } from '@rs/report/node';
 * writeFileSync('report.html', renderReport(collectReport(model)));
 */
export function renderReport(data: ReportData): string {
  return renderReportHtml(data, readVegaLibraries());
}
