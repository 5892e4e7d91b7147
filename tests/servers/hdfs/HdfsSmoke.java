// Smoke check for the HDFS test server, run in its own JVM as an ordinary
// network client: writes a file, reads it back, checks where its block lives,
// deletes it. Exit status 0 means the server is usable from outside.
//
// Usage: java -cp <classpath> HdfsSmoke hdfs://127.0.0.1:<port>

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.BlockLocation;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

public final class HdfsSmoke {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: HdfsSmoke hdfs://127.0.0.1:<port>");
            System.exit(2);
        }
        Configuration conf = new Configuration(false);
        conf.setBoolean("dfs.client.use.datanode.hostname", false);
        conf.setInt("dfs.replication", 1);

        byte[] payload = ("artifact-gateway hdfs smoke " + System.nanoTime())
                .getBytes(StandardCharsets.UTF_8);
        Path dir = new Path("/ag-smoke-" + ProcessHandle.current().pid());
        Path file = new Path(dir, "object.bin");

        try (FileSystem fs = FileSystem.newInstance(URI.create(args[0]), conf)) {
            fs.mkdirs(dir);
            try (OutputStream out = fs.create(file, true)) {
                out.write(payload);
            }
            FileStatus st = fs.getFileStatus(file);
            if (st.getLen() != payload.length) {
                fail("length " + st.getLen() + " != " + payload.length);
            }
            for (BlockLocation loc : fs.getFileBlockLocations(st, 0, st.getLen())) {
                String names = Arrays.toString(loc.getNames());
                System.out.println("block on " + names);
                for (String n : loc.getNames()) {
                    if (!n.startsWith("127.0.0.1:")) {
                        fail("block served from " + n + ", expected 127.0.0.1");
                    }
                }
            }
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            try (InputStream in = fs.open(file)) {
                in.transferTo(got);
            }
            if (!Arrays.equals(got.toByteArray(), payload)) {
                fail("read back different bytes");
            }
            if (!fs.delete(dir, true)) {
                fail("delete returned false");
            }
        }
        System.out.println("OK wrote and read " + payload.length + " bytes via " + args[0]);
    }

    private static void fail(String msg) {
        System.err.println("HdfsSmoke FAILED: " + msg);
        System.exit(1);
    }
}
