import Attest

/// A rule of a policy, compiled from the document (``PolicyEngine/rules(of:)``): one type per rule kind, each with
/// its ``RuleID`` (section, name and the PCRs it judges), judging one ``EvaluationInput`` and reporting through `add`.
/// Every rule fails closed: an input the verifier did not establish is a failure that names what is missing.
protocol PolicyRule: Sendable {
    var id: RuleID { get }
    /// - Parameter trusted: the policy's trusted banks, in its order (facts are read from the first that verifies).
    func evaluate(_ e: EvaluationInput, trusted: [TPMAlgorithmID], _ add: PolicyEngine.Add)
}
