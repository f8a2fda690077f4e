import Foundation
import KeelSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The virtual machine monitor a test boots its guest under.
public enum VMM: Sendable, CustomStringConvertible {
    /// QEMU with KVM (`qemu-system-x86_64 -accel kvm`); `machine` is `microvm` or `pc`.
    case qemu(machine: String)
    /// Keel's `keel run`, from this package's build directory.
    case keel

    public var description: String {
        switch self {
        case .qemu(let machine): "qemu(\(machine))"
        case .keel: "keel"
        }
    }
}

/// Everything needed to boot one guest: the artifacts, the guest's shape and the agent options.
public struct GuestBoot: Sendable {
    public var kernel: String
    public var initrd: String
    public var disks: [String] = []
    /// Kernel command line; `console=ttyS0 quiet panic=-1` is always prepended (`quiet` because
    /// every console byte is a VM exit, which costs ~65 us in the rig; read dmesg instead).
    public var commandLine: String = ""
    public var memoryMiB: Int = 512
    public var cpus: Int = 1
    /// Shell script the agent runs after its report (`keel.script=`).
    public var script: String?
    /// Extra `keel run` options (ignored under QEMU).
    public var keelOptions: [String] = []
    /// Command prefix for the VMM, e.g. `["ip", "netns", "exec", "ns1"]`.
    public var launcher: [String] = []

    public init(image: GuestImage) {
        kernel = image.kernel
        initrd = image.initrd
    }

    var fullCommandLine: String {
        var parts = ["console=ttyS0", "quiet", "panic=-1"]
        if !commandLine.isEmpty { parts.append(commandLine) }
        if let script { parts.append("keel.script=" + Data(script.utf8).base64EncodedString()) }
        return parts.joined(separator: " ")
    }

    /// The command line that starts this guest under `vmm`.
    public func arguments(for vmm: VMM) -> [String] {
        switch vmm {
        case .qemu(let machine):
            var args = launcher + ["qemu-system-x86_64", "-accel", "kvm", "-M", machine,
                        "-m", "\(memoryMiB)", "-smp", "\(cpus)",
                        "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                        "-kernel", kernel, "-initrd", initrd, "-append", fullCommandLine]
            for (i, disk) in disks.enumerated() {
                args += ["-drive", "file=\(disk),format=raw,if=virtio,index=\(i)"]
            }
            return args
        case .keel:
            var args = launcher + [TestEnvironment.path(".build/release/keel"), "run", "--kernel", kernel, "--initrd", initrd,
                        "--cmdline", fullCommandLine, "--memory", "\(memoryMiB)", "--cpus", "\(cpus)"]
            for disk in disks { args += ["--disk", disk] }
            return args + keelOptions
        }
    }
}

/// Raised when the VMM cannot be started at all.
public struct GuestBootError: Error, CustomStringConvertible {
    public let description: String
}

/// Boots `boot` under `vmm`, collects the console until the VMM exits, and returns the parsed
/// report. The VMM is killed (by PID, SIGKILL) when `timeout` passes; it never outlives the call.
/// `typeAfter` sends text to the guest console once a console line contains the trigger (for
/// example the agent's `KEEL-GUEST ready`), as a person typing at the prompt would;
/// `signalAfter` sends a signal to the VMM process the same way (e.g. SIGTERM for a host-
/// initiated shutdown). For each text in `watch`, the report notes when it first appeared.
/// Each `onLine` action runs once (on the reading thread) when a line contains its trigger,
/// e.g. to change the host side while the guest waits.
public func bootGuest(_ boot: GuestBoot, under vmm: VMM, timeout: Duration = .seconds(240),
                      typeAfter: (trigger: String, text: String)? = nil,
                      signalAfter: (trigger: String, signal: Int32)? = nil,
                      watch: [String] = [],
                      onLine: [(trigger: String, action: @Sendable () -> Void)] = []) async throws -> GuestReport {
    let started = ContinuousClock.now
    let child: ChildProcess
    do { child = try ChildProcess(arguments: boot.arguments(for: vmm)) } catch {
        throw GuestBootError(description: "cannot start \(vmm): \(error)")
    }
    let finished = Mutex(false)
    let timedOut = Mutex(false)
    let watchdog = try NamedThread(name: "guest-watchdog") {
        while ContinuousClock.now - started < timeout {
            if finished.withLock({ $0 }) { return }
            usleep(100_000)
        }
        if !finished.withLock({ $0 }) {
            timedOut.withLock { $0 = true }
            child.send(signal: SIGKILL)
        }
    }

    var report = GuestReport()
    var typed = false
    var signalled = false
    var pendingActions = onLine
    var pending: [UInt8] = []
    // A VMM that survives SIGKILL (stuck in the kernel) must not hang the test run: 30 s after
    // the kill the harness stops reading and does not wait for it.
    let killedAt = Mutex<ContinuousClock.Instant?>(nil)
    var abandoned = false
    while true {
        if Poller.waitReadable([child.output.rawValue], timeoutMilliseconds: 500).isEmpty {
            if timedOut.withLock({ $0 }) {
                let since = killedAt.withLock { k in
                    if k == nil { k = ContinuousClock.now }
                    return ContinuousClock.now - (k ?? ContinuousClock.now)
                }
                if since > .seconds(30) { abandoned = true; break }
            }
            continue
        }
        guard let chunk = try? child.output.read(maxCount: 4096), !chunk.isEmpty else { break }
        pending += chunk
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if report.consume(line: line, hostTime: Double(HostClock.realtimeNanoseconds()) / 1e9),
               report.secondsToReady == nil, line.contains(GuestReport.prefix + "ready") {
                report.secondsToReady = seconds
            }
            for text in watch where report.secondsToLine[text] == nil && line.contains(text) {
                report.secondsToLine[text] = seconds
            }
            if let typeAfter, !typed, line.contains(typeAfter.trigger) {
                typed = true
                try? child.input.writeAll(Array(typeAfter.text.utf8))
            }
            while let i = pendingActions.firstIndex(where: { line.contains($0.trigger) }) {
                pendingActions.remove(at: i).action()
            }
            if let signalAfter, !signalled, line.contains(signalAfter.trigger) {
                signalled = true
                child.send(signal: signalAfter.signal)
            }
        }
    }
    if !pending.isEmpty { report.consume(line: String(decoding: pending, as: UTF8.self)) }
    if abandoned {
        report.consume(line: "HARNESS: the VMM (pid \(child.pid)) did not exit 30 s after SIGKILL; abandoned")
    }
    let status = abandoned ? -1 : child.wait()
    finished.withLock { $0 = true }
    watchdog.join()
    report.timedOut = timedOut.withLock { $0 }
    report.exitStatus = report.timedOut ? nil : status
    return report
}
