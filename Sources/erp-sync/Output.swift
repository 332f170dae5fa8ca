import Foundation
import SyncCore

/// Human-readable tables for the terminal.
enum Output {
    /// Prints a run result: what the run read and wrote, never a figure of the whole `tb_sales` (summing a
    /// source's rows is a scan of the table, which would cost every scheduled run as much as a full load reads;
    /// `erp-sync status` shows those totals). A run refused because another process holds the source's lock is
    /// not a run: one line, no table.
    static func printResult(_ result: ErpSyncResult) {
        if result.status == .failed, result.recordsFetched == 0, let lock = result.errors.first(where: { $0.code == .locked }) {
            return print("\(result.source)  LOCKED  \(lock.message); nothing was read or written, try again when that run ends")
        }
        let seconds = String(format: "%.2f", Double(result.duration) / 1000)
        let rate = result.duration > 0 ? " (\(Int(Double(result.recordsFetched) * 1000 / Double(result.duration))) rows/s)" : ""
        print("\(result.source)  \(result.syncType.rawValue)  \(result.status.rawValue)  \(seconds) s\(rate)  syncId \(result.syncId)")
        print(table([
            ["fetched", "processed", "inserted", "updated", "unchanged", "skipped", "rejected", "deleted", "hasMore"],
            [result.recordsFetched, result.recordsProcessed, result.recordsInserted, result.recordsUpdated, result.recordsUnchanged,
             result.recordsSkipped, result.recordsRejected, result.recordsDeleted].map { $0.formatted() } + [result.hasMore ? "yes" : "no"],
        ], indent: 2))
        print("  cursor: \(result.cursorFrom ?? "(start)") -> \(result.cursorTo ?? "(start)")")
        for error in result.errors {
            let batch = error.batch.map { " (batch \($0))" } ?? ""
            print("  \(error.severity) \(error.code)\(batch): \(error.message)\(error.retryable ? " [retryable]" : "")")
        }
        if result.recordsRejected > 0 {
            print("  rejected rows are kept in tb_sync_errors: erp-sync errors --source \(result.source)")
        }
    }

    /// How the user ran this program, for hints to type next: `erp-sync` when it was found on the `PATH`
    /// (installed), else its path (`.build/debug/erp-sync` under `swift run`), relative to the current folder
    /// when inside it.
    static var invocation: String {
        let argument = CommandLine.arguments.first ?? "erp-sync"
        guard argument.contains("/") else { return argument }
        let folder = FileManager.default.currentDirectoryPath + "/"
        return argument.hasPrefix(folder) ? String(argument.dropFirst(folder.count)) : argument
    }

    /// Prints a reconciliation: a summary line, then each bucket that is not a plain match with its figures and
    /// the rows the drill-down named.
    static func printReconciliation(_ report: ReconciliationReport) {
        let mismatches = report.mismatches.count
        let verdict = mismatches == 0 ? "match" : (mismatches == 1 ? "1 bucket differs" : "\(mismatches) buckets differ")
        print("\(report.source)  reconcile  \(verdict)  \(report.buckets.count) buckets (pdv x day)  \(report.durationMs) ms  id \(report.id)")
        print("  source \(report.sourceRows.formatted()) rows, tb_sales \(report.auditRows.formatted()) rows; checkpoint \(report.checkpoint ?? "(none)")")
        let shown = report.buckets.filter { $0.status != .match || $0.notYetSynced > 0 || $0.quarantined > 0 || $0.vanished > 0 }
        guard !shown.isEmpty else { return }
        var rows = [["day", "pdv", "source", "amount", "not yet synced", "quarantined", "tb_sales", "amount", "deleted src/audit", "vanished", "status"]]
        for bucket in shown {
            rows.append([bucket.day.isEmpty ? "(no date)" : bucket.day, bucket.pdv.isEmpty ? "(none)" : bucket.pdv, bucket.sourceRows.formatted(),
                         bucket.sourceAmount, bucket.notYetSynced.formatted(), bucket.quarantined.formatted(), bucket.auditRows.formatted(),
                         bucket.auditAmount, "\(bucket.sourceDeleted)/\(bucket.auditDeleted)", bucket.vanished.formatted(), bucket.status.rawValue])
        }
        print(table(rows, indent: 2))
        for bucket in shown {
            for (label, ids) in [("missing", bucket.missing), ("extra", bucket.extra), ("different", bucket.different),
                                 ("quarantined", bucket.quarantinedIds), ("not yet synced", bucket.notYetSyncedIds)] where !ids.isEmpty {
                print("  \(bucket.day) pdv \(bucket.pdv) \(label): \(ids.joined(separator: ", "))")
            }
        }
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ rows: [[String]], indent: Int = 0) -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        let widths = (0..<width).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            String(repeating: " ", count: indent) + row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension Int {
    /// Digits grouped by thousands with commas: `16,049`.
    func formatted() -> String {
        let digits = String(abs(self))
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return self < 0 ? "-" + out : out
    }
}

/// A progress bar on stderr when it is a terminal, plain lines every few seconds otherwise. A percentage and an
/// ETA only when ``SyncProgress/expected`` is set, i.e. the source estimated the rows this run reads; without
/// it (`nil`, or 0) just rows and rows/s: a whole-table count shown as a percentage would read `0% 5/1,006`
/// for an incremental run.
final class ProgressDisplay: @unchecked Sendable {
    private let source: String
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private var lastLine = Date.distantPast
    private var drawn = false
    private let started = Date()

    init(source: String) { self.source = source }

    func update(_ progress: SyncProgress) {
        lock.withLock {
            let now = Date()
            let elapsed = max(now.timeIntervalSince(started), 0.001)
            let rate = Double(progress.fetched) / elapsed
            var line = "\(source): \(progress.fetched.formatted()) rows, \(Int(rate).formatted()) rows/s"
            if let estimate = progress.expected, estimate > 0 {
                let expected = max(estimate, progress.fetched)
                let fraction = min(1, Double(progress.fetched) / Double(expected))
                let filled = Int(fraction * 30)
                let eta = rate > 0 ? Double(max(0, expected - progress.fetched)) / rate : 0
                line = "\(source) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(Int(fraction * 100))% "
                    + "\(progress.fetched.formatted())/\(expected.formatted()) rows, \(Int(rate).formatted()) rows/s, ETA \(Int(eta.rounded())) s"
            }
            if isTerminal {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
                drawn = true
            } else if now.timeIntervalSince(lastLine) >= 5 {
                FileHandle.standardError.write(Data("\(line)\n".utf8))
                lastLine = now
            }
        }
    }

    func finish() {
        lock.withLock {
            if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        }
    }
}
