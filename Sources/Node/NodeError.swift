/// The one error type of `Node`'s own code (the manifest, plugins, the agent's configuration): what went wrong
/// and where. Errors of the TPM, the vault and the controller keep their own types.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and where.
    public let description: String
    /// An error.
    public init(_ description: String) { self.description = description }
}
