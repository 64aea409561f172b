import Foundation
import Hummingbird
import HummingbirdCore
import Policy

/// What the dashboard reads from a request, parsed exactly as its routes parse it: form bodies (sign-in, sign-out,
/// policy upload), the fleet page's query string, and an uploaded policy (linted, and compared line by line).
/// Public for the fuzz target (`Fuzz/Sources/FuzzControllerAPI`).
public enum DashboardInput {
    /// A form body (`application/x-www-form-urlencoded`, at most ``DashboardRoutes/maximumFormBody`` bytes) as
    /// `T`; nil if it is not one.
    static func form<T: Decodable>(_ type: T.Type, _ body: [UInt8], limit: Int = DashboardRoutes.maximumFormBody)
        -> T?
    {
        guard body.count <= limit else { return nil }
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
        _ = form(DashboardRoutes.PolicyUploadBody.self, bytes, limit: DashboardRoutes.maximumPolicyForm)
        let query = DashboardPages.FleetQuery(parameters(URI("/ui/?" + String(decoding: bytes, as: UTF8.self))))
        _ = DashboardPages.fleetRegion([], query, now: Date(), freshFor: 900)
        _ = DashboardPages.fleetPage(region: "", query)
        // An uploaded policy: linted, its error shown at its line, and compared with another version.
        let text = String(decoding: bytes, as: UTF8.self)
        let file = "fuzz.yaml"
        do throws(PolicyError) { _ = try DashboardPolicies.load(yaml: text, parents: [], file: file) } catch {
            _ = DashboardPages.lintError(error, file: file, yaml: text)
        }
        let half = text.index(text.startIndex, offsetBy: text.count / 2)
        _ = DashboardPages.textDiff(old: String(text[..<half]), new: String(text[half...]))
    }
}
