import Foundation

/// Where keeld keeps its state and socket unless told otherwise, and where the CLI looks.
public enum ManagementDefaults {
    /// `/var/lib/keel` for root, `$XDG_STATE_HOME/keel` (or `~/.local/state/keel`) otherwise.
    public static func stateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                      isRoot: Bool = geteuid() == 0) -> String {
        if isRoot { return "/var/lib/keel" }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/keel" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/state/keel"
    }

    /// The API socket: `$KEEL_SOCKET`, else `keeld.sock` in the default state directory.
    public static func socketPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let socket = environment["KEEL_SOCKET"], !socket.isEmpty { return socket }
        return stateDirectory(environment: environment) + "/" + StateFiles.socketFile
    }
}
