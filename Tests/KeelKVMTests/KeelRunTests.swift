import Foundation
import KeelTestSupport
import Testing

/// `keel run` end to end on this machine's /dev/kvm, with tiny kernels that go through the real
/// boot path and devices: exit statuses, signals and bad input.
@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")), .serialized)
struct KeelRunTests {
    struct Result {
        var status: Int32
        var stderr: String
    }

    static let keel = TestEnvironment.path(".build/debug/keel")

    func writeKernel(_ code: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "keel-tiny-\(UUID().uuidString).bzImage"
        try Data(TinyKernel.image(code: code)).write(to: URL(fileURLWithPath: path))
        return path
    }

    func keelRun(_ arguments: [String], signalAfter: (Int32, Double)? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.keel)
        process.arguments = ["run"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        if let (signo, delay) = signalAfter {
            Thread.sleep(forTimeInterval: delay)
            kill(pid, signo)
        }
        // Guard against a hang: nothing here should take more than a few seconds.
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Result(status: process.terminationStatus, stderr: text)
    }

    func run(code: [UInt8], extra: [String] = [], signalAfter: (Int32, Double)? = nil) throws -> Result {
        let kernel = try writeKernel(code)
        defer { try? FileManager.default.removeItem(atPath: kernel) }
        return try keelRun(["--kernel", kernel, "--memory", "64"] + extra, signalAfter: signalAfter)
    }

    @Test func powerOffExitsZero() throws {
        let r = try run(code: TinyKernel.powerOff)
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func powerOffWithTwoCPUs() throws {
        let r = try run(code: TinyKernel.powerOff, extra: ["--cpus", "2"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func resetExitsThree() throws {
        let r = try run(code: TinyKernel.reset)
        #expect(r.status == 3, "\(r.stderr)")
    }

    @Test func panicExitsFour() throws {
        let r = try run(code: TinyKernel.panic)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("panicked"))
    }

    @Test func tripleFaultExitsFourWithRegisters() throws {
        let r = try run(code: TinyKernel.tripleFault)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("rip="), "\(r.stderr)")
    }

    @Test func sigtermStopsTheVM() throws {
        let r = try run(code: TinyKernel.spin, signalAfter: (SIGTERM, 0.5))
        #expect(r.status == 128 + SIGTERM, "\(r.stderr)")
    }

    @Test func sigintStopsTheVMWithTwoCPUs() throws {
        let r = try run(code: TinyKernel.spin, extra: ["--cpus", "2"], signalAfter: (SIGINT, 0.5))
        #expect(r.status == 128 + SIGINT, "\(r.stderr)")
    }

    @Test(arguments: [
        (["--kernel", "/nonexistent/vmlinuz"], "no such file"),
        (["--kernel", "/etc/hostname"], "truncated"),
        (["--kernel", "/tmp"], "is a directory"),
        (["--kernel", "TINY", "--memory", "0"], "--memory 0"),
        (["--kernel", "TINY", "--memory", "99999999"], "--memory"),
        (["--kernel", "TINY", "--cpus", "0"], "--cpus 0"),
        (["--kernel", "TINY", "--cpus", "1000"], "--cpus 1000"),
        (["--kernel", "TINY", "--initrd", "/nonexistent"], "--initrd"),
        (["--kernel", "TINY", "--cmdline", String(repeating: "x", count: 5000)], "--cmdline"),
    ])
    func badInputGetsOneLineErrorAndStatusTwo(arguments: [String], mentions: String) throws {
        let kernel = try writeKernel(TinyKernel.powerOff)
        defer { try? FileManager.default.removeItem(atPath: kernel) }
        let r = try keelRun(arguments.map { $0 == "TINY" ? kernel : $0 })
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
