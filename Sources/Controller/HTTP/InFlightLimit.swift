import ControllerProtocol
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Back-pressure: at most `limit` requests are handled at once by this instance; the next is answered at once with
/// 503 `overloaded` and `Retry-After: 1` (before its body is read), so a burst costs the controller a header parse,
/// not a queue that grows without bound while every device's latency does too. Liveness and metrics are exempt: an
/// overloaded controller must still say so.
struct InFlightLimit<Context: RequestContext>: RouterMiddleware {
    /// Requests being handled now, shared by every connection of the instance.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    let limit: Int
    let counter: Counter
    let metrics: ControllerMetrics?
    /// Paths never refused (`/healthz`, `/metrics`).
    let exempt: Set<String>

    init(limit: Int, metrics: ControllerMetrics?) {
        self.limit = max(1, limit)
        self.counter = Counter()
        self.metrics = metrics
        exempt = Set(["health", "metrics"].compactMap { APIOperation.named($0)?.path })
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if exempt.contains(request.uri.path) { return try await next(request, context) }
        let now = counter.value.wrappingAdd(1, ordering: .relaxed).newValue
        metrics?.inFlight(now)
        defer { metrics?.inFlight(counter.value.wrappingSubtract(1, ordering: .relaxed).newValue) }
        guard now <= limit else {
            metrics?.overloaded()
            return ControllerServer.errorResponse(
                .unavailable(
                    "overloaded",
                    "the controller is handling its limit of \(limit) requests at once; try again in 1 s",
                    retryAfter: 1))
        }
        return try await next(request, context)
    }
}
