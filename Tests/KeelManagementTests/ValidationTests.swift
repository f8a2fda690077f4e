import KeelManagement
import Testing

/// Every create input is checked with a clear message and the right error code (HTTP status).
struct ValidationTests {
    /// A fake file system: a kernel, an initrd, a disk, a read-only disk, a tiny file, a directory.
    static let files = FileFacts(
        kind: { path in
            switch path {
            case "/k/vmlinuz", "/k/initrd", "/d/disk.img", "/d/ro.img", "/d/tiny.img": .file
            case "/k": .directory
            default: .missing
            }
        },
        readable: { $0 != "/k/secret" },
        writable: { $0 != "/d/ro.img" },
        size: { $0 == "/d/tiny.img" ? 100 : 1 << 20 })

    func check(_ spec: VMSpec) throws(APIError) { try Validation.check(spec, files: Self.files) }

    func expectError(_ spec: VMSpec, _ code: APIError.Code, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try check(spec)
            Issue.record("accepted: \(spec)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func aCompleteSpecPasses() throws {
        try check(VMSpec(name: "web-1.prod_a", memoryMiB: 512, cpus: 2, kernel: "/k/vmlinuz", initrd: "/k/initrd",
                         disks: [DiskSpec(path: "/d/disk.img"), DiskSpec(path: "/d/ro.img", readOnly: true)]))
    }

    @Test(arguments: ["", " ", "a b", "-x", ".hidden", "_x", "a/b", "..", "é", "a\u{0}b", String(repeating: "x", count: 64)])
    func badNamesAreRefused(_ name: String) {
        expectError(VMSpec(name: name, kernel: "/k/vmlinuz"), .invalidArgument, "name")
    }

    @Test func sixtyThreeCharacterNameIsFine() throws {
        try check(VMSpec(name: String(repeating: "x", count: 63), kernel: "/k/vmlinuz"))
    }

    @Test func sizesAndCounts() {
        expectError(VMSpec(name: "a", cpus: 0, kernel: "/k/vmlinuz"), .invalidArgument, "cpus 0")
        expectError(VMSpec(name: "a", cpus: 65, kernel: "/k/vmlinuz"), .invalidArgument, "cpus 65")
        expectError(VMSpec(name: "a", memoryMiB: 63, kernel: "/k/vmlinuz"), .invalidArgument, "memoryMiB 63")
        expectError(VMSpec(name: "a", memoryMiB: (1 << 20) + 1, kernel: "/k/vmlinuz"), .invalidArgument, "memoryMiB")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", shutdownTimeoutSeconds: -1), .invalidArgument, "shutdownTimeoutSeconds")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", commandLine: String(repeating: "x", count: 4096)), .invalidArgument, "commandLine")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", commandLine: "a\u{0}"), .invalidArgument, "NUL")
        let many = (0..<65).map { DiskSpec(path: "/d/disk\($0).img") }
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", disks: many), .invalidArgument, "at most 64")
    }

    @Test func files() {
        expectError(VMSpec(name: "a", kernel: "/nonexistent"), .invalidArgument, "kernel /nonexistent: no such file")
        expectError(VMSpec(name: "a", kernel: "vmlinuz"), .invalidArgument, "absolute")
        expectError(VMSpec(name: "a", kernel: ""), .invalidArgument, "kernel: empty path")
        expectError(VMSpec(name: "a", kernel: "/k"), .invalidArgument, "is a directory")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", initrd: "/k/nope"), .invalidArgument, "initrd /k/nope")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", disks: [DiskSpec(path: "/d/none")]), .invalidArgument, "no such file")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", disks: [DiskSpec(path: "/d/ro.img")]), .invalidArgument, "readable and writable")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", disks: [DiskSpec(path: "/d/tiny.img")]), .invalidArgument, "smaller than 512")
        expectError(VMSpec(name: "a", kernel: "/k/vmlinuz", disks: [DiskSpec(path: "/d/disk.img"), DiskSpec(path: "/d/disk.img")]),
                    .invalidArgument, "given twice")
    }

    @Test func networksAreValidated() throws {
        func spec(_ networks: [NetworkSpec]) -> VMSpec { VMSpec(name: "a", kernel: "/k/vmlinuz", networks: networks) }
        expectError(spec([NetworkSpec(tap: "")]), .invalidArgument, "1 to 15 characters")
        expectError(spec([NetworkSpec(tap: "a-very-long-tap-name")]), .invalidArgument, "1 to 15 characters")
        expectError(spec([NetworkSpec(tap: "../x")]), .invalidArgument, "no '/'")
        expectError(spec([NetworkSpec(tap: "t0"), NetworkSpec(tap: "t0")]), .invalidArgument, "given twice")
        expectError(spec([NetworkSpec(tap: "t0", mac: "01:00:5e:00:00:01")]), .invalidArgument, "unicast")
        expectError(spec([NetworkSpec(tap: "t0", mac: "00:15:5d")]), .invalidArgument, "must look like")
        expectError(spec((0..<9).map { NetworkSpec(tap: "t\($0)") }), .invalidArgument, "at most 8")
        #expect(spec([NetworkSpec(tap: "t0", mac: "00:15:5d:01:02:03")]).workerArguments
            .contains("tap=t0,mac=00:15:5d:01:02:03"))
        #expect(throws: APIError.self) { try NetworkSpec.parse("mac=00:15:5d:01:02:03") }
        #expect(try NetworkSpec.parse("tap=t1,mac=00:15:5d:01:02:03") == NetworkSpec(tap: "t1", mac: "00:15:5d:01:02:03"))
        #expect(APIError.Code.unsupported.httpStatus == 501)
    }

    @Test func diskOptionParsing() throws {
        #expect(try DiskSpec.parse("/d/x.img,readonly") == DiskSpec(path: "/d/x.img", readOnly: true))
        #expect(try DiskSpec.parse("/d/x.img") == DiskSpec(path: "/d/x.img"))
        #expect(throws: APIError.self) { try DiskSpec.parse("/d/x.img,fast") }
        #expect(throws: APIError.self) { try DiskSpec.parse(",readonly") }
    }

    @Test func specDefaultsAndWorkerArguments() throws {
        let spec = try JSON.decode(VMSpec.self, from: Array(#"{"name":"a","kernel":"/k/vmlinuz"}"#.utf8))
        #expect(spec.memoryMiB == 512 && spec.cpus == 1 && spec.commandLine == "console=ttyS0" && spec.shutdownTimeoutSeconds == 30)
        var full = spec
        full.disks = [DiskSpec(path: "/d/ro.img", readOnly: true)]
        full.initrd = "/k/initrd"
        #expect(full.workerArguments == ["--kernel", "/k/vmlinuz", "--initrd", "/k/initrd", "--cmdline", "console=ttyS0",
                                         "--memory", "512", "--cpus", "1", "--disk", "/d/ro.img,readonly", "--shutdown-timeout", "30"])
    }
}
