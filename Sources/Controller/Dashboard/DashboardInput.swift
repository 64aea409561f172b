import Foundation
import Hummingbird
import HummingbirdCore

/// What the dashboard reads from a request, parsed exactly as its routes parse it: form bodies (sign-in, sign-out)
/// and the fleet page's query string. Public for the fuzz target (`Fuzz/Sources/FuzzControllerAPI`).
public enum DashboardInput {
    /// A form body (`application/x-www-form-urlencoded`, at most ``DashboardRoutes/maximumFormBody`` bytes) as
    /// `T`; nil if it is not one.
    static func form<T: Decodable>(_ type: T.Type, _ body: [UInt8]) -> T? {
        guard body.count <= DashboardRoutes.maximumFormBody else { return nil }
        return try? URLEncodedFormDecoder().decode(T.self, from: String(decoding: body, as: UTF8.self))
    }

    /// The fleet page's query parameters from a request target (`/ui/?q=…&state=…&sort=…&order=…`); the first of
    /// a repeated name wins.
    static func parameters(_ uri: URI) -> [String: String] {
        Dictionary(uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { a, _ in a })
    }

    /// Runs `bytes` through every dashboard parser: as a sign-in and a sign-out form, and as the query of a fleet
    /// page (whose filter, sort links and table are then built over an empty fleet).
    public static func exercise(_ bytes: [UInt8]) {
        _ = form(DashboardRoutes.LoginForm.self, bytes)
        _ = form(DashboardRoutes.CSRFForm.self, bytes)
        let query = DashboardPages.FleetQuery(parameters(URI("/ui/?" + String(decoding: bytes, as: UTF8.self))))
        _ = DashboardPages.fleetRegion([], query, now: Date(), freshFor: 900)
        _ = DashboardPages.fleetPage(region: "", query)
    }
}
