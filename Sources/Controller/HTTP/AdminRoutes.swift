import ControllerProtocol
import Foundation
import Hummingbird

/// The security team's routes (`/v1/admin/…`): each checks the bearer token's role first, then reads a
/// bounded body strictly (unknown fields refused).
enum AdminRoutes {
    static func add(to h: inout [String: ControllerServer.Handler], _ controller: Controller) {
        @Sendable func caller(_ request: Request, _ role: Admin.Role) async throws(ControllerError)
            -> Controller.AdminCaller
        {
            try await controller.authenticateAdmin(authorization: request.headers[.authorization], requires: role)
        }
        @Sendable func body<T: Decodable & SendableMetatype>(_ request: Request, _ type: T.Type, _ keys: Set<String>)
            async throws(ControllerError)
            -> T
        {
            let bytes = try await ControllerServer.collect(request, limit: Controller.maximumAdminBody)
            return try ControllerServer.decode(type, bytes, limit: Controller.maximumAdminBody, knownKeys: keys)
        }
        @Sendable func parameter<K>(_ context: BasicRequestContext, _ key: String, as: ResourceName<K>.Type)
            throws(ControllerError) -> ResourceName<K>
        {
            do { return try ResourceName<K>.parse(context.parameters.get(key) ?? "") } catch {
                throw ControllerError(error)
            }
        }
        @Sendable func device(_ context: BasicRequestContext) throws(ControllerError) -> DeviceID {
            guard let id = DeviceID(context.parameters.get("id") ?? "") else {
                throw .invalid("not a device id (vd- and 24 hex digits)")
            }
            return id
        }
        struct Count: Encodable { var count: Int }
        struct Version: Encodable { var version: Int }
        struct Empty: Encodable {}

        h["ekCAPut"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .policyAdmin)
                let name = try parameter(context, "name", as: EKCABundleName.self)
                let upload = try await body(request, Admin.EKCABundleUpload.self, Admin.EKCABundleUpload.knownKeys)
                return Count(count: try await controller.putEKCABundle(c, name: name, upload))
            }
        }
        h["policyAdd"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .policyAdmin)
                let name = try parameter(context, "name", as: PolicyName.self)
                let upload = try await body(request, Admin.PolicyUpload.self, Admin.PolicyUpload.knownKeys)
                return try await controller.addPolicy(c, name: name, upload)
            }
        }
        h["policyAssign"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .policyAdmin)
                let name = try parameter(context, "name", as: PolicyName.self)
                let a = try await body(request, Admin.PolicyAssignment.self, Admin.PolicyAssignment.knownKeys)
                return try await controller.assignPolicy(c, name: name, a)
            }
        }
        h["policyList"] = { request, _ in
            try await ControllerServer.respond {
                try await controller.listPolicies(try await caller(request, .viewer))
            }
        }
        h["deviceAllow"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                try await controller.allowEK(c, try await body(request, Admin.AllowEK.self, Admin.AllowEK.knownKeys))
                return Empty()
            }
        }
        h["deviceDisallow"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                let r = try await body(request, Admin.AllowEK.self, Admin.AllowEK.knownKeys)
                try await controller.disallowEK(c, r.ekFingerprint)
                return Empty()
            }
        }
        h["enrollTokenRevoke"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                try await controller.revokeEnrollToken(
                    c, try await body(request, Admin.EnrollTokenRevoke.self, Admin.EnrollTokenRevoke.knownKeys))
                return Empty()
            }
        }
        h["enrollTokenCreate"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                return try await controller.createEnrollToken(
                    c, try await body(request, Admin.EnrollTokenRequest.self, Admin.EnrollTokenRequest.knownKeys))
            }
        }
        h["deviceList"] = { request, _ in
            try await ControllerServer.respond {
                try await controller.listDevices(try await caller(request, .viewer))
            }
        }
        h["deviceShow"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .viewer)
                return try await controller.showDevice(c, try device(context))
            }
        }
        h["evePreregister"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                try await controller.preregisterEVE(
                    c, try await body(request, Admin.EVEPreregistration.self, Admin.EVEPreregistration.knownKeys))
                return Empty()
            }
        }
        h["eveUnregister"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                try await controller.unregisterEVE(c, uuid: context.parameters.get("uuid") ?? "")
                return Empty()
            }
        }
        h["deviceRevoke"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                try await controller.revokeDevice(c, try device(context))
                return Empty()
            }
        }
        h["secretPut"] = { request, context in
            try await ControllerServer.respond {
                let c = try await caller(request, .operator)
                let name = try parameter(context, "name", as: SecretName.self)
                let upload = try await body(request, Admin.SecretUpload.self, Admin.SecretUpload.knownKeys)
                return Version(version: try await controller.putSecret(c, name: name, upload))
            }
        }
        h["auditVerify"] = { request, _ in
            try await ControllerServer.respond {
                try await controller.verifyAudit(try await caller(request, .viewer))
            }
        }
        h["tokenCreate"] = { request, _ in
            try await ControllerServer.respond {
                let c = try await caller(request, .admin)
                return try await controller.createToken(
                    c, try await body(request, Admin.TokenRequest.self, Admin.TokenRequest.knownKeys))
            }
        }
    }
}
