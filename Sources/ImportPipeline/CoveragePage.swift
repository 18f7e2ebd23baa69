import Columnar
import Foundation
import JobState
import KlineArchive

/// `status --html`: the coverage grid as one self-contained HTML file (no external script, style
/// or font): keys x months coloured by state, a tooltip per cell (its archives, rows, anomalies,
/// errors, gaps), each key's first and last row and row count, and the totals.
///
/// Large jobs: cells are one per key and MONTH (aggregation; 2,000 keys x 7 years is 168,000
/// cells), and rows are drawn as they scroll into view (virtual scrolling: about 60 rows in the
/// document at a time), from the data embedded as JSON.
package struct CoveragePage {
    /// A cell's state: the grid's, refined by the gaps recorded in its month.
    package enum CellState: String, CaseIterable, Sendable {
        case monthly, repaired = "monthly_repaired", daily, rest
        case gapExplained = "gap_explained", gapUnexplained = "gap_unexplained"
        case writing, failed
        case notPublished = "not_published"
        case pending

        package var color: String {
            switch self {
            case .monthly: return "#2e7d32"
            case .repaired: return "#66bb6a"
            case .daily: return "#81c784"
            case .rest: return "#4fc3f7"
            case .gapExplained: return "#c0ca33"
            case .gapUnexplained: return "#ff9800"
            case .writing: return "#7e57c2"
            case .failed: return "#d32f2f"
            case .notPublished: return "#e0e0e0"
            case .pending: return "#ffffff"
            }
        }

        package var label: String {
            switch self {
            case .monthly: return "done from the monthly archive"
            case .repaired: return "monthly, repaired from daily archives"
            case .daily: return "done from daily archives"
            case .rest: return "done from REST"
            case .gapExplained: return "done; a gap REST explained (exchange gap, or filled)"
            case .gapUnexplained: return "done; a gap no source explains"
            case .writing: return "being written (reconciled by the next run)"
            case .failed: return "failed"
            case .notPublished: return "not published"
            case .pending: return "pending"
            }
        }
    }

    package struct Key: Sendable {
        package var key: String
        package var cells: [CellState]
        package var tips: [String]
        package var firstEpoch: Int64?
        package var lastEpoch: Int64?
        package var rows: Int
        /// Seconds behind now (follow's page).
        package var lag: Double?
    }

    package var job: String
    package var generated: String
    package var months: [ArchivePeriod]
    package var keys: [Key]

    /// The page of a state: the grid's cells, their units and gaps. `lags`: follow's, per key.
    package init(job: String, manifest: Manifest, grid: CoverageGrid, generated: String, lags: [String: Double] = [:]) {
        self.job = job
        self.generated = generated
        months = grid.months
        var unitsByCell: [String: [ArchivePeriod: [UnitRecord]]] = [:]
        for record in manifest.units.values where record.status != .superseded {
            guard let period = archivePeriod(ofRemotePath: record.remotePath), let month = ArchivePeriod(year: period.year, month: period.month) else { continue }
            unitsByCell[record.key, default: [:]][month, default: []].append(record)
        }
        var gapsByCell: [String: [ArchivePeriod: [GapRecord]]] = [:]
        for gap in manifest.gaps ?? [] {
            for month in grid.months where gap.first < month.end && gap.last >= month.start {
                gapsByCell[gap.key, default: [:]][month, default: []].append(gap)
            }
        }
        var doneByKey: [String: [UnitRecord]] = [:]
        for record in manifest.units.values where record.status == .done { doneByKey[record.key, default: []].append(record) }
        keys = grid.keys.map { key in
            let done = doneByKey[key] ?? []
            var cells: [CellState] = [], tips: [String] = []
            for (i, month) in grid.months.enumerated() {
                let units = (unitsByCell[key]?[month] ?? []).sorted { $0.id < $1.id }
                let gaps = gapsByCell[key]?[month] ?? []
                var state = CellState(grid.rows[key]?[i] ?? .pending)
                if [.monthly, .repaired, .daily, .rest].contains(state), !gaps.isEmpty {
                    state = gaps.contains { $0.state == .unexplained } ? .gapUnexplained : .gapExplained
                }
                cells.append(state)
                tips.append(Self.tip(key: key, month: month, state: state, units: units, gaps: gaps))
            }
            return Key(key: key, cells: cells, tips: tips, firstEpoch: done.compactMap(\.firstEpoch).min(), lastEpoch: done.compactMap(\.lastEpoch).max(),
                       rows: done.reduce(0) { $0 + ($1.rows ?? 0) }, lag: lags[key])
        }
    }

    /// What a cell's tooltip says below its key, month and state (which the page adds): each unit
    /// (archive, rows, anomalies, error) and each gap.
    static func tip(key: String, month: ArchivePeriod, state: CellState, units: [UnitRecord], gaps: [GapRecord]) -> String {
        var lines: [String] = []
        for unit in units.prefix(8) {
            var line = (unit.id.split(separator: "/").last.map(String.init) ?? unit.id) + ": " + unit.status.rawValue
            if let rows = unit.rows { line += ", \(rows) rows" }
            if let anomalies = unit.anomalies, !anomalies.isEmpty {
                line += ", " + anomalies.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            }
            if let error = unit.error { line += "; " + String(error.prefix(200)) }
            lines.append(line)
        }
        if units.count > 8 { lines.append("... and \(units.count - 8) more units") }
        for gap in gaps.prefix(5) { lines.append("gap: " + gap.summary) }
        if gaps.count > 5 { lines.append("... and \(gaps.count - 5) more gaps") }
        return lines.joined(separator: "\n")
    }

    /// The data the page's script draws from.
    var data: [String: Any] {
        let states = CellState.allCases
        let index = Dictionary(uniqueKeysWithValues: states.enumerated().map { ($1, $0) })
        var totals: [String: Int] = [:]
        for key in keys { for cell in key.cells { totals[cell.rawValue, default: 0] += 1 } }
        return [
            "job": job, "generated": generated, "months": months.map(\.description),
            "states": states.map { ["name": $0.rawValue, "color": $0.color, "label": $0.label] },
            "totals": ["cells": totals, "keys": keys.count, "rows": keys.reduce(0) { $0 + $1.rows }],
            "keys": keys.map { k -> [String: Any] in
                var o: [String: Any] = ["key": k.key, "cells": k.cells.map { index[$0]! }, "tips": k.tips, "rows": k.rows,
                                        "first": k.firstEpoch.map(UTCCalendar.iso8601) ?? "", "last": k.lastEpoch.map(UTCCalendar.iso8601) ?? ""]
                if let lag = k.lag { o["lag"] = lag }
                return o
            },
        ]
    }

    package var html: String {
        let json = (try? JSONSerialization.data(withJSONObject: data, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        // `</` cannot end the script element early inside the JSON.
        let embedded = json.replacingOccurrences(of: "</", with: "<\\/")
        return Self.template.replacingOccurrences(of: "TITLE", with: Self.escape("coverage of \(job)"))
            .replacingOccurrences(of: "DATA_JSON", with: embedded)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static let template = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>TITLE</title>
        <style>
        body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
        h1 { font-size: 18px; margin: 0 0 4px; }
        #summary { margin: 4px 0 10px; }
        #legend span.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: middle; margin: 0 4px 0 10px; }
        #grid { position: relative; height: 70vh; overflow: auto; border: 1px solid #ccc; margin-top: 8px; }
        #head, .row { display: flex; white-space: nowrap; height: 18px; line-height: 18px; }
        #head { position: sticky; top: 0; background: #fafafa; z-index: 2; border-bottom: 1px solid #ccc; font-size: 10px; }
        .name { position: sticky; left: 0; background: #fff; width: 210px; min-width: 210px; overflow: hidden; text-overflow: ellipsis; padding-right: 6px; z-index: 1; }
        .info { width: 320px; min-width: 320px; color: #555; font-size: 11px; overflow: hidden; }
        .cell { width: 10px; min-width: 10px; height: 16px; margin: 1px 1px 1px 0; box-sizing: border-box; border: 1px solid #ddd; }
        .m { width: 11px; min-width: 11px; text-align: center; }
        #rows { position: relative; }
        </style></head>
        <body>
        <h1 id="title"></h1>
        <div id="summary"></div>
        <div id="legend"></div>
        <div id="grid"><div id="head"></div><div id="rows"></div></div>
        <script id="data" type="application/json">DATA_JSON</script>
        <script>
        "use strict";
        const data = JSON.parse(document.getElementById("data").textContent);
        const rowHeight = 18, states = data.states;
        document.getElementById("title").textContent = "Coverage of " + data.job;
        const t = data.totals;
        document.getElementById("summary").textContent = t.keys + (t.keys === 1 ? " key, " : " keys, ") + data.months.length + " months, " + t.rows.toLocaleString("en") +
          " rows done; generated " + data.generated + ". Cells: " +
          states.filter(s => t.cells[s.name]).map(s => t.cells[s.name] + " " + s.label).join(", ") + ".";
        const legend = document.getElementById("legend");
        for (const s of states) {
          const sw = document.createElement("span"); sw.className = "sw"; sw.style.background = s.color;
          legend.appendChild(sw); legend.appendChild(document.createTextNode(s.label));
        }
        const head = document.getElementById("head");
        const name = document.createElement("div"); name.className = "name"; name.textContent = "key"; head.appendChild(name);
        const info = document.createElement("div"); info.className = "info"; info.textContent = "first row .. last row (rows)"; head.appendChild(info);
        data.months.forEach((m, i) => {
          const d = document.createElement("div"); d.className = "m";
          d.textContent = m.endsWith("-01") || i === 0 ? m.slice(2, 4) : m.slice(5, 7) === "07" ? "·" : "";
          d.title = m; head.appendChild(d);
        });
        const rows = document.getElementById("rows"), grid = document.getElementById("grid");
        rows.style.height = (data.keys.length * rowHeight) + "px";
        grid.style.height = "min(70vh, " + ((data.keys.length + 1) * rowHeight + 8) + "px)";
        function drawRow(k, index) {
          const row = document.createElement("div"); row.className = "row"; row.style.position = "absolute"; row.style.top = (index * rowHeight) + "px";
          row.dataset.key = k.key;
          const n = document.createElement("div"); n.className = "name"; n.textContent = k.key; n.title = k.key; row.appendChild(n);
          const i = document.createElement("div"); i.className = "info";
          i.textContent = (k.first ? k.first + " .. " + k.last : "no rows") + " (" + k.rows.toLocaleString("en") + ")" + (k.lag !== undefined ? ", lag " + Math.round(k.lag) + " s" : "");
          row.appendChild(i);
          k.cells.forEach((c, j) => {
            const cell = document.createElement("div"); cell.className = "cell";
            cell.style.background = states[c].color;
            cell.title = k.key + " " + data.months[j] + ": " + states[c].label + (k.tips[j] ? "\\n" + k.tips[j] : "");
            cell.dataset.month = data.months[j]; cell.dataset.state = states[c].name;
            row.appendChild(cell);
          });
          return row;
        }
        let drawn = [-1, -1];
        function draw() {
          const first = Math.max(0, Math.floor(grid.scrollTop / rowHeight) - 10);
          const last = Math.min(data.keys.length, first + Math.ceil(grid.clientHeight / rowHeight) + 20);
          if (first === drawn[0] && last === drawn[1]) return;
          drawn = [first, last];
          const fragment = document.createDocumentFragment();
          for (let r = first; r < last; r++) fragment.appendChild(drawRow(data.keys[r], r));
          rows.replaceChildren(fragment);
        }
        grid.addEventListener("scroll", () => requestAnimationFrame(draw));
        window.addEventListener("resize", draw);
        /** Scrolls the key's row into view (for links and tests): `showKey("BTCUSDT/1H/OHLCV")`. */
        window.showKey = function (key) {
          const r = data.keys.findIndex(k => k.key === key);
          if (r < 0) return false;
          grid.scrollTop = r * rowHeight; draw(); return true;
        };
        draw();
        document.body.dataset.ready = "true";
        </script>
        </body></html>
        """
}

extension CoveragePage.CellState {
    init(_ state: CoverageGrid.State) {
        switch state {
        case .monthly: self = .monthly
        case .repaired: self = .repaired
        case .daily: self = .daily
        case .rest: self = .rest
        case .failed: self = .failed
        case .notPublished: self = .notPublished
        case .writing: self = .writing
        case .pending: self = .pending
        }
    }
}
