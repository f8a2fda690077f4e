import Foundation

/// Where the tests are running and what they can use: the repository, the guest images built by
/// `scripts/guest-image`, and whether a KVM that can boot Linux is present (inside the rig).
public enum TestEnvironment {
    /// The repository root (the directory holding Package.swift).
    public static let repositoryRoot: URL = {
        if let root = ProcessInfo.processInfo.environment["KEEL_REPO"] { return URL(fileURLWithPath: root) }
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// True inside `scripts/rig`, where /dev/kvm is a real (nested) KVM that boots Linux.
    public static var insideRig: Bool {
        ProcessInfo.processInfo.environment["KEEL_IN_RIG"] == "1"
            && FileManager.default.fileExists(atPath: "/dev/kvm")
    }

    /// Why real-guest tests cannot run here, or nil when they can.
    public static var realGuestSkipReason: String? {
        if !insideRig {
            return "SKIPPED: needs the nested KVM rig (this machine's /dev/kvm cannot boot Linux); "
                + "run scripts/test, which runs these tests inside scripts/rig"
        }
        for version in GuestImage.Version.allCases where !GuestImage(version).isBuilt {
            return "SKIPPED: guest image \(version.rawValue) not built; run scripts/guest-image"
        }
        return nil
    }

    /// An absolute path of a file under the repository.
    public static func path(_ relative: String) -> String {
        repositoryRoot.appendingPathComponent(relative).path
    }
}

/// The default guest artifacts of one kernel, as laid out by `scripts/guest-image`.
public struct GuestImage: Sendable {
    public enum Version: String, CaseIterable, Sendable {
        case linux61 = "6.1"
        case linux612 = "6.12"
    }

    public let version: Version
    public init(_ version: Version) { self.version = version }

    private var directory: String { TestEnvironment.path(".cache/guest/\(version.rawValue)") }
    public var kernel: String { directory + "/vmlinuz" }
    public var initrd: String { directory + "/initrd.cpio.gz" }
    public var rootDisk: String { directory + "/rootfs.ext4" }
    /// `uname -r` of the kernel.
    public var release: String {
        ((try? String(contentsOfFile: directory + "/kernel-release", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var isBuilt: Bool {
        [kernel, initrd].allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
}
