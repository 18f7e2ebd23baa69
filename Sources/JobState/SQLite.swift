import CSQLite
import Columnar
import DurableFiles
import Foundation
import JobModel

/// An error from SQLite, with the database file it concerns.
public struct SQLiteError: Error, CustomStringConvertible {
    public let path: String
    public let code: Int32
    public let message: String
    public var description: String { "\(path): \(message) (SQLite error \(code))" }
}

/// SQLite's destructor constant that makes it copy bound text (Swift strings are temporary).
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One connection to a SQLite database, through SQLite's C API: the few calls the job's state
/// needs (open, statements, transactions), not a general wrapper. Not thread-safe: the owner
/// (an actor, or one command) serializes its use.
package final class SQLiteDatabase {
    package let path: String
    private var db: OpaquePointer?

    package enum Mode { case readWrite, readWriteCreate, readOnly }

    package init(path: String, mode: Mode) throws {
        self.path = path
        var flags: Int32 = SQLITE_OPEN_NOMUTEX
        switch mode {
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            db = nil
            throw SQLiteError(path: path, code: rc, message: message)
        }
        sqlite3_busy_timeout(db, 10_000)  // a reader (`status`) beside a running import waits, not fails
    }

    deinit { sqlite3_close_v2(db) }

    package func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(path: path, code: rc, message: String(cString: sqlite3_errmsg(db)))
    }

    /// Runs statements that return no rows.
    package func execute(_ sql: String) throws {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    package func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        return SQLiteStatement(statement, database: self)
    }

    /// Transactions open on this connection: an inner one is part of the outer.
    private var transactionDepth = 0

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// Called inside another, `body` is part of that one (committed or rolled back with it).
    package func transaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 {
            transactionDepth += 1
            defer { transactionDepth -= 1 }
            return try body()
        }
        try execute("BEGIN IMMEDIATE")
        transactionDepth = 1
        defer { transactionDepth = 0 }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // The error that stopped the body is the one to report; a failed rollback leaves
            // SQLite to roll back when the connection closes.
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The first column of the first row of `sql`, as text.
    package func text(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        return try statement.step() ? statement.text(0) : nil
    }
}

/// A prepared statement: bind by position (1-based), step, read columns (0-based).
package final class SQLiteStatement {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase

    fileprivate init(_ statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit { sqlite3_finalize(statement) }

    /// Binds text (nil: NULL); throws SQLite's error (a wrong index, a value too big).
    package func bind(_ index: Int32, _ value: String?) throws {
        try check(value.map { sqlite3_bind_text(statement, index, $0, -1, transient) } ?? sqlite3_bind_null(statement, index))
    }

    package func bind(_ index: Int32, _ value: Int64?) throws {
        try check(value.map { sqlite3_bind_int64(statement, index, $0) } ?? sqlite3_bind_null(statement, index))
    }

    private func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw database.error(rc) }
    }

    /// Steps once: true while a row is available. Resets the statement when it is done.
    @discardableResult
    package func step() throws -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE:
            sqlite3_reset(statement)
            return false
        default:
            let error = database.error(rc)
            sqlite3_reset(statement)
            throw error
        }
    }

    /// Resets the statement (for re-use before it stepped to the end) and clears its bindings.
    package func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    package func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(statement, column) else { return nil }
        return String(cString: bytes)
    }

    package func int(_ column: Int32) -> Int64? {
        sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, column)
    }
}
