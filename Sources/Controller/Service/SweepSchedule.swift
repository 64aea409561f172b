import Foundation
import Synchronization

/// When this instance last swept each table of expired rows (request ids, nonces): at most every
/// ``interval`` seconds, instead of a `DELETE` in every request's transaction. Sweeping late is harmless: the
/// rows it removes are already refused by their own times.
final class SweepSchedule: Sendable {
    /// Seconds between two sweeps of one table.
    static let interval: TimeInterval = 10

    private let last = Mutex<[String: Date]>([:])

    /// Whether `table` is due for a sweep at `now` (and, if so, records that it is being swept).
    func due(_ table: String, at now: Date) -> Bool {
        last.withLock { last in
            if let previous = last[table], abs(now.timeIntervalSince(previous)) < Self.interval { return false }
            last[table] = now
            return true
        }
    }
}
