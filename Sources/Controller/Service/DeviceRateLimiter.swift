import Foundation
import Synchronization

/// Token buckets keyed by device: `burst` requests at once, refilled at `perMinute` a minute. One instance's
/// memory, bounded: past ``maximumKeys`` devices, the buckets that have refilled completely (idle devices) are
/// dropped, and if every bucket is busy the oldest are, so a flood of identities cannot grow it without bound.
final class DeviceRateLimiter: Sendable {
    /// The most devices tracked at once.
    static let maximumKeys = 100_000

    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private let burst: Double
    private let perSecond: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    /// Buckets of `burst` tokens (at least 1) refilled at `perMinute` (at least 1) a minute.
    init(burst: Int, perMinute: Int) {
        self.burst = Double(max(1, burst))
        self.perSecond = Double(max(1, perMinute)) / 60
    }

    /// Takes a token for `key` at `now`: nil when admitted, otherwise the whole seconds until a token is there.
    func admit(_ key: String, now: Date) -> Int? {
        buckets.withLock { buckets -> Int? in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = max(0, now.timeIntervalSince(bucket.updated))
            bucket.tokens = min(burst, bucket.tokens + elapsed * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
            }
            bucket.tokens -= 1
            if buckets[key] == nil, buckets.count >= Self.maximumKeys { evict(&buckets, now: now) }
            buckets[key] = bucket
            return nil
        }
    }

    /// Drops idle buckets (full again by now); if none is idle, the least recently used half.
    private func evict(_ buckets: inout [String: Bucket], now: Date) {
        let burst = burst
        let perSecond = perSecond
        buckets = buckets.filter { $0.value.tokens + now.timeIntervalSince($0.value.updated) * perSecond < burst }
        if buckets.count >= Self.maximumKeys {
            let keep = buckets.sorted { $0.value.updated > $1.value.updated }.prefix(Self.maximumKeys / 2)
            buckets = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }
}
