import Foundation
import TestSupport
import XCTest

/// `audit --rest N`: archives against Binance's REST klines (the REST test server answers what
/// bench/gen_archives.py's daily archives hold): a kline changed in one archive is reported, the
/// other days agree.
extension ImportJobTests {
    func testAuditAgainstRESTReportsTheOneDifferingKline() async throws {
        try generate("spot", "RSTUSDT", "1h", "2024-03", days: 14...16)
        // One close of the 15th changed in its daily archive (and its CHECKSUM made anew).
        let archive = tree.appendingPathComponent("data/spot/daily/klines/RSTUSDT/1h/RSTUSDT-1h-2024-03-15.zip").path
        let edit = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib, sys, zipfile
            path = sys.argv[1]
            with zipfile.ZipFile(path) as z:
                name = z.namelist()[0]; lines = z.read(name).decode().splitlines()
            at = str(1710478800000)  # 2024-03-15T05:00:00Z
            for i, line in enumerate(lines):
                f = line.split(",")
                if f[0] == at:
                    f[4] = "12345.5"; lines[i] = ",".join(f)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name, "\\n".join(lines) + "\\n")
            open(path + ".CHECKSUM", "w").write(hashlib.sha256(open(path, "rb").read()).hexdigest() + "  " + path.rsplit("/", 1)[1] + "\\n")
            """, archive])
        XCTAssertEqual(edit.status, 0, edit.output)
        let rest = try startREST()
        defer { rest.stop() }
        try await rest.control(["now": "2024-03-17T00:00:00Z"])
        let path = work.appendingPathComponent("audit-rest.yml").path
        try """
            name: audit-rest
            source: {base_url: \(archives.url), listing_url: \(archives.url)/listing, cache_dir: \(work.appendingPathComponent("cache").path), rest_url: \(rest.base)}
            market: spot
            symbols: [RSTUSDT]
            intervals: [1h]
            from: 2024-03
            to: 2024-03
            target: {marketstore: "\(marketstore.url)"}
            manifest: \(work.appendingPathComponent("state/audit-rest.manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try importer(["run", path], today: "2024-03-17").status, 0)
        let audit = try importer(["audit", path, "--rest", "3", "--json"], today: "2024-03-17")
        XCTAssertEqual(audit.status, 1, audit.output)
        let object = try JSONSerialization.jsonObject(with: Data(audit.output.utf8)) as? [String: Any]
        let found = try XCTUnwrap(object?["disagreements"] as? [[String: Any]])
        XCTAssertEqual(found.count, 1, "\(found.prefix(3))")
        XCTAssertEqual(found.first?["kind"] as? String, "value")
        XCTAssertEqual(found.first?["open_time"] as? String, "2024-03-15T05:00:00Z")
        XCTAssertEqual(found.first?["column"] as? String, "Close")
        XCTAssertEqual(found.first?["monthly"] as? String, "12345.5", "the archive's value")
        let stats = try await rest.stats()
        XCTAssertEqual((stats["klines_requests"] as? [Any])?.count, 3, "a request a day")
    }

    /// `audit --rest N` on a funding-rate job: the archive's fundings against Binance's funding
    /// history (the REST test server's schedule and rates); one rate changed in the archive is
    /// the one disagreement.
    func testAuditAgainstRESTComparesFundingRates() async throws {
        let january: Int64 = 1_735_689_600  // 2025-01-01
        var csv = "calc_time,funding_interval_hours,last_funding_rate\n"
        for t in stride(from: january, to: january + 31 * 86400, by: 8 * 3600) {
            let hour = t / 3600
            let rate = t == january + 10 * 86400 ? "0.00077700" : String(format: "%.8f", Double((hour * 37) % 200 - 100) / 1e6)
            csv += "\(t * 1000 + hour % 7),8,\(rate)\n"
        }
        let folder = tree.appendingPathComponent("data/futures/um/monthly/fundingRate/FNDUSDT")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let zip = ZipBuilder.single("FNDUSDT-fundingRate-2025-01.csv", csv)
        try Data(zip).write(to: folder.appendingPathComponent("FNDUSDT-fundingRate-2025-01.zip"))
        try "\(sha256Hex(zip))  FNDUSDT-fundingRate-2025-01.zip\n".write(to: folder.appendingPathComponent("FNDUSDT-fundingRate-2025-01.zip.CHECKSUM"),
                                                                      atomically: true, encoding: .utf8)
        let rest = try startREST()
        defer { rest.stop() }
        try await rest.control(["now": "2025-02-05T00:00:00Z"])
        let path = work.appendingPathComponent("audit-funding.yml").path
        try """
            name: audit-funding
            source: {base_url: \(archives.url), listing_url: \(archives.url)/listing, cache_dir: \(work.appendingPathComponent("cache").path), rest_url: \(rest.base)}
            market: futures/um
            dataset: fundingRate
            symbols: [FNDUSDT]
            from: 2025-01
            to: 2025-01
            target: {marketstore: "\(marketstore.url)"}
            manifest: \(work.appendingPathComponent("state/audit-funding.manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try importer(["run", path], today: "2025-02-05")
        XCTAssertEqual(run.status, 0, run.output)
        let audit = try importer(["audit", path, "--rest", "1", "--json"], today: "2025-02-05")
        XCTAssertEqual(audit.status, 1, audit.output)
        let object = try JSONSerialization.jsonObject(with: Data(audit.output.utf8)) as? [String: Any]
        let found = try XCTUnwrap(object?["disagreements"] as? [[String: Any]])
        XCTAssertEqual(found.map { $0["kind"] as? String }, ["value"], "\(found.prefix(3))")
        XCTAssertEqual(found.first?["open_time"] as? String, "2025-01-11T00:00:00Z")
        XCTAssertEqual(found.first?["column"] as? String, "Rate")
        XCTAssertEqual(found.first?["monthly"] as? String, "0.000777", "the archive's rate")
    }
}
