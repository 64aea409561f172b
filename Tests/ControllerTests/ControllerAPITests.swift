import Controller
import ControllerClient
import ControllerProtocol
import Foundation
import Testing
import VigilTestSupport

/// The HTTP surface without a TPM: bad input of every kind gets a 4xx naming what is wrong and leaves nothing
/// in the database; roles are enforced; the OpenAPI document and the routes are the same list.
@Suite struct ControllerAPITests {
    static func connect(_ h: ControllerHarness) throws -> ControllerConnection {
        try ControllerConnection(url: h.url, caPEM: try String(contentsOfFile: h.caPath, encoding: .utf8))
    }

    static func count(_ h: ControllerHarness, _ table: String) async throws -> Int64 {
        try await h.backend.transaction { tx throws(ControllerError) in
            try await tx.first("SELECT COUNT(*) AS n FROM \(table)", [])?.requiredInteger("n") ?? -1
        }
    }

    @Test(arguments: ControllerHarness.Database.available)
    func badInputIsRefusedWithAReasonAndLeavesNothingBehind(_ database: ControllerHarness.Database) async throws {
        let h = try await ControllerHarness.start(database)
        let c = try Self.connect(h)
        let token = try String(contentsOfFile: h.adminTokenPath, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let bearer = [("Authorization", "Bearer \(token)")]
        let before = (try await Self.count(h, "devices"), try await Self.count(h, "policies"))
        let begin = "/v1/onboard/begin"
        let cases: [(String, String, [UInt8], [(String, String)], Int, String)] = [
            ("POST", begin, Array("{not json".utf8), [], 400, "not a JSON object"),
            ("POST", begin, Array("[]".utf8), [], 400, "not a JSON object"),
            (
                "POST", begin,
                Array(#"{"ek_public":"AA==","ak_public":"AA==","device_public":"AA==","surprise":1}"#.utf8), [], 400,
                "unknown field \"surprise\""
            ),
            ("POST", begin, Array(#"{"ek_public":"AA=="}"#.utf8), [], 400, "missing field ak_public"),
            (
                "POST", begin,
                Array(#"{"ek_public":"'; DROP TABLE devices; --","ak_public":"AA==","device_public":"AA=="}"#.utf8), [],
                400, "ek_public: not base64"
            ),
            (
                "POST", begin, Array(#"{"ek_public":"AAEC","ak_public":"AA==","device_public":"AA=="}"#.utf8), [], 400,
                "ek_public"
            ),
            ("POST", begin, [UInt8](repeating: 0x20, count: Controller.maximumOnboardingBody + 1), [], 413, "at most"),
            ("POST", "/v1/attest", Array("{}".utf8), [], 401, "no Authorization header"),
            (
                "POST", "/v1/attest", Array("{}".utf8),
                [("Authorization", "Vigil-TPM device=vd-x, ts=1, rid=1, sig=AA==")], 401, "valid device id"
            ),
            (
                "POST", "/v1/attest/nonce", [],
                [
                    (
                        "Authorization",
                        "Vigil-TPM device=vd-0123456789abcdef01234567, ts=1, rid=00112233445566778899aabbccddeeff, sig=\(Data(repeating: 0x30, count: 70).base64EncodedString())"
                    )
                ], 401, "unknown device"
            ),
            ("POST", "/v1/admin/policies/..%2Fetc", Array(#"{"yaml":"id: x"}"#.utf8), bearer, 400, "policy name"),
            ("POST", "/v1/admin/policies/p1", Array(#"{"yaml":"id: [unclosed"}"#.utf8), bearer, 400, "does not lint"),
            (
                "POST", "/v1/admin/policies/p1", Array(#"{"yaml":"id: p\nversion: 1\naccept: any\n"}"#.utf8), bearer,
                400, "judges nothing"
            ),
            ("GET", "/v1/admin/devices/vd-'%20OR%201=1", [], bearer, 400, "not a device id"),
            ("POST", "/v1/admin/devices/allow", Array(#"{"ek_fingerprint":"zz"}"#.utf8), bearer, 400, "ek_fingerprint"),
            ("POST", "/v1/admin/enroll-tokens", Array(#"{"expires_in_seconds":5}"#.utf8), bearer, 400, "between 60 s"),
            ("GET", "/v1/admin/devices", [], [("Authorization", "Bearer wrong")], 401, "not valid"),
            ("GET", "/v1/admin/devices", [], [], 401, "Bearer"),
        ]
        for (method, path, body, headers, status, reason) in cases {
            let (got, bytes) = try await c.send(method: method, path: path, body: body, headers: headers)
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(got == status, "\(method) \(path): \(got) \(text)")
            let error = try? APIJSON.decode(APIErrorBody.self, from: bytes, limit: 1 << 16)
            #expect(error?.reason.contains(reason) == true, "\(method) \(path): \(text)")
        }
        #expect(try await Self.count(h, "devices") == before.0)
        #expect(try await Self.count(h, "policies") == before.1)
        // Every refusal is in the audit log, and the chain holds.
        let report = try await h.controller.verifyAudit(try await h.admin())
        #expect(report.intact)
        await c.shutdown()
        await h.stop()
    }

    @Test func rolesAreEnforced() async throws {
        let h = try await ControllerHarness.start()
        let c = try Self.connect(h)
        let viewer = try await h.controller.createToken(try await h.admin(), Admin.TokenRequest(role: .viewer)).token
        let list = try await c.send(
            method: "GET", path: "/v1/admin/devices", body: nil, headers: [("Authorization", "Bearer \(viewer)")])
        #expect(list.status == 200)
        let add = try await c.send(
            method: "POST", path: "/v1/admin/policies/p", body: Array(#"{"yaml":"id: p"}"#.utf8),
            headers: [("Authorization", "Bearer \(viewer)")])
        #expect(add.status == 403)
        #expect(String(decoding: add.body, as: UTF8.self).contains("needs the policy-admin role"))
        let mint = try await c.send(
            method: "POST", path: "/v1/admin/tokens", body: Array(#"{"role":"admin"}"#.utf8),
            headers: [("Authorization", "Bearer \(viewer)")])
        #expect(mint.status == 403)
        await c.shutdown()
        await h.stop()
    }

    @Test func theOpenAPIDocumentAndTheRoutesAreTheSameList() async throws {
        let h = try await ControllerHarness.start()
        #expect(ControllerServer.handledOperations(h.controller) == Set(APIOperation.all.map(\.id)))
        let c = try Self.connect(h)
        let (status, body) = try await c.send(method: "GET", path: "/openapi.json", body: nil)
        #expect(status == 200)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.0.3")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        for op in APIOperation.all {
            #expect(paths[op.path]?[op.method.lowercased()] != nil, "\(op.method) \(op.path) is not described")
            // And the route answers (whatever the status, it is not "no such route").
            let concrete = op.path.replacingOccurrences(of: "{name}", with: "n").replacingOccurrences(
                of: "{id}", with: "vd-0123456789abcdef01234567")
            let (s, b) = try await c.send(method: op.method, path: concrete, body: op.method == "GET" ? nil : [])
            let isRouteMiss = s == 404 && (try? APIJSON.decode(APIErrorBody.self, from: b, limit: 1 << 16)) == nil
            #expect(!isRouteMiss, "\(op.method) \(op.path) has no route")
        }
        #expect(paths.values.reduce(0) { $0 + $1.count } == APIOperation.all.count)
        let metrics = try await c.send(method: "GET", path: "/metrics", body: nil)
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("vigil_request_duration_seconds"))
        await c.shutdown()
        await h.stop()
    }
}
