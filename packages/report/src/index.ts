/**
 * @rs/report: what a reorganized model looks like, as JSON (`collectReport`) and as one
 * self-contained HTML page of Vega-Lite charts (`renderReportHtml`; in Node, `renderReport` from
 * `@rs/report/node` inlines the charting libraries for you). Depends on @rs/core only (plus vega).
 */
export { collectReport } from './collect';
export { renderReportHtml } from './html';
export type { VegaLibraries } from './html';
export type {
  ReportOptions,
  ReportExitPolicy,
  ReportData,
  ReportJournalEntry,
  GraphSnapshot,
  SnapshotNode,
  SparsityRow,
  ExpertLoadLayer,
  ExitRates,
  GrowthSeries,
  SearchCurve,
  QueueTimelineRow,
} from './types';
