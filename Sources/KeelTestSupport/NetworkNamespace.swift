/// A network namespace the test creates for the host side of a VM's TAP interfaces, deleted
/// (with its interfaces) when the value goes away. Needs root (the rig runs tests as root).
public final class NetworkNamespace: Sendable {
    public let name: String

    public init(_ name: String) throws {
        self.name = name
        _ = try? runHostCommand(["ip", "netns", "del", name])   // a leftover from a killed run
        let made = try runHostCommand(["ip", "netns", "add", name])
        guard made.status == 0 else { throw GuestBootError(description: "ip netns add \(name): \(made.output)") }
        _ = try run(["ip", "link", "set", "lo", "up"])
    }

    deinit { _ = try? runHostCommand(["ip", "netns", "del", name]) }

    /// Runs a command inside the namespace.
    @discardableResult
    public func run(_ command: [String]) throws -> (status: Int32, output: String) {
        try runHostCommand(["ip", "netns", "exec", name] + command)
    }

    /// Creates TAP `tap` in the namespace with `address` (CIDR) and brings it up.
    public func addTap(_ tap: String, address: String) throws {
        for command in [["ip", "tuntap", "add", "dev", tap, "mode", "tap"], ["ip", "addr", "add", address, "dev", tap],
                        ["ip", "link", "set", tap, "up"]] {
            let r = try run(command)
            guard r.status == 0 else { throw GuestBootError(description: "\(command.joined(separator: " ")): \(r.output)") }
        }
    }

    /// The launcher prefix that runs a VMM inside the namespace.
    public var launcher: [String] { ["ip", "netns", "exec", name] }
}
