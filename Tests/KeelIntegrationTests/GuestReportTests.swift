import Testing
import KeelTestSupport

/// The report parser runs everywhere (no rig needed).
struct GuestReportTests {
    @Test func parsesKeyValuesFlagsAndLists() {
        var r = GuestReport()
        let plain = r.consume(line: "[    0.000000] Linux version 6.1.0")
        let report = r.consume(line: "KEEL-GUEST kernel=6.1.0-28-amd64\r")
        #expect(!plain)
        #expect(report)
        r.consume(line: "KEEL-GUEST vmbus_devices=a,b block_devices=none")
        r.consume(line: "noise KEEL-GUEST ready uptime=1.25")
        #expect(r.values["kernel"] == "6.1.0-28-amd64")
        #expect(r.list("vmbus_devices") == ["a", "b"])
        #expect(r.list("block_devices").isEmpty)
        #expect(r.list("absent").isEmpty)
        #expect(r.flags == ["ready"])
        #expect(r.values["uptime"] == "1.25")
        #expect(r.consoleLines.count == 4)
        #expect(r.lines(containing: "Linux version").count == 1)
    }

    @Test func lastValueWins() {
        var r = GuestReport()
        r.consume(line: "KEEL-GUEST cpus=1")
        r.consume(line: "KEEL-GUEST cpus=2")
        #expect(r.int("cpus") == 2)
    }
}
