import Testing
@testable import Swiftlet

/// The union filter every thread gets at start (`SeccompPolicy.process`): it must allow everything any thread's
/// own list allows (a call has to pass both), and name each system call once, unconditionally where any list
/// allows it without conditions.
struct SeccompPolicyTests {
    static var everyRule: [SyscallRule] {
        SeccompThreadKind.allCases.flatMap(SeccompPolicy.rules(for:)) + SeccompPolicy.apiServerStart + SeccompPolicy.filterInstallation
    }

    static func isUnconditional(_ rule: SyscallRule) -> Bool { rule.comparisons.isEmpty && rule.errno == nil }

    @Test("the union covers every thread kind's rules, each name once unconditionally or as its distinct conditions")
    func unionCoversEveryList() {
        let union = SeccompPolicy.process
        for rule in Self.everyRule {
            let covered = union.contains(rule) || union.contains { $0.name == rule.name && Self.isUnconditional($0) }
            #expect(covered, "\(rule.name) \(rule.comparisons) is not in the union")
        }
        for name in Set(union.map(\.name)) {
            let entries = union.filter { $0.name == name }
            if entries.contains(where: Self.isUnconditional) {
                #expect(entries.count == 1, "\(name): an unconditional rule and others")
            }
            #expect(Set(entries).count == entries.count, "\(name) has duplicate rules")
        }
        // Names keep the order in which the lists first mention them, each name's rules side by side.
        var firstSeen: [String] = []
        for rule in Self.everyRule where !firstSeen.contains(rule.name) { firstSeen.append(rule.name) }
        var unionNames: [String] = []
        for rule in union where unionNames.last != rule.name { unionNames.append(rule.name) }
        #expect(unionNames == firstSeen)
        // What is conditional everywhere stays conditional: no thread may ioctl TIOCSTI, clone without
        // CLONE_THREAD, or install a SIGSYS handler.
        #expect(union.filter { $0.name == "ioctl" } == [SeccompPolicy.ioctlExceptTIOCSTI])
        #expect(!union.contains { $0.name == "clone" && Self.isUnconditional($0) })
        #expect(!union.contains { $0.name == "rt_sigaction" && Self.isUnconditional($0) })
    }
}
