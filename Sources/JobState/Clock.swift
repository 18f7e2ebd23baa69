import Columnar
import DurableFiles
import Foundation
import JobModel

/// Now as "2026-11-25T23:19:14Z". FoundationEssentials' format style: ISO8601DateFormatter goes
/// through ICU and cost 40% of a first run of tiny units when made per record (perf).
public func isoNow() -> String {
    Date().formatted(.iso8601)
}
