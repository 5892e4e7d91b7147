// HDFS test server for artifact-gateway's test suite.
//
// Runs a NameNode and one DataNode in this JVM, all bound to 127.0.0.1 on free
// ports. When the cluster is usable it prints exactly one line to stdout:
//
//     READY hdfs://127.0.0.1:<namenode-port>
//
// and then waits for stdin to reach end-of-file. EOF, SIGTERM, SIGINT and
// SIGHUP all shut the cluster down cleanly.
//
// Usage: java -cp <classpath> MiniDfs <base-dir>
// (logging goes to stderr; stdout carries only the READY line)

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.DatanodeInfo;
import org.apache.hadoop.hdfs.protocol.HdfsConstants.DatanodeReportType;

import sun.misc.Signal;

public final class MiniDfs {
    private static final String LOOPBACK = "127.0.0.1";

    private static final Object LOCK = new Object();
    private static MiniDFSCluster cluster;
    private static boolean stopped;

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: MiniDfs <base-dir>");
            System.exit(2);
        }
        File base = new File(args[0]).getAbsoluteFile();
        if (!base.isDirectory() && !base.mkdirs()) {
            System.err.println("MiniDfs: cannot create base dir " + base);
            System.exit(2);
        }

        // Keep stdout for the READY line only; anything else Hadoop prints goes to stderr.
        PrintStream ready = System.out;
        System.setOut(System.err);

        // Stop on TERM/INT/HUP before the JVM starts its own shutdown: Hadoop's
        // services unregister shutdown hooks while stopping, which is refused once
        // the JVM is already exiting. The hook stays as a fallback for other exits.
        for (String sig : new String[] {"TERM", "INT", "HUP"}) {
            Signal.handle(new Signal(sig), s -> {
                System.err.println("MiniDfs: SIG" + s.getName() + ", shutting down");
                stop();
                System.exit(0);
            });
        }
        Runtime.getRuntime().addShutdownHook(new Thread(MiniDfs::stop, "minidfs-shutdown"));

        Configuration conf = buildConf(base);
        MiniDFSCluster started = new MiniDFSCluster.Builder(conf)
                .nameNodePort(0)
                .nameNodeHttpPort(0)
                .numDataNodes(1)
                .format(true)
                .build();
        synchronized (LOCK) {
            cluster = started;
            if (stopped) { // a signal arrived while the cluster was starting
                shutdownQuietly(started);
                return;
            }
        }
        started.waitActive();
        started.waitClusterUp();

        DistributedFileSystem fs = started.getFileSystem();
        if (fs.isInSafeMode()) {
            throw new IllegalStateException("NameNode is still in safe mode after waitActive()");
        }
        for (DatanodeInfo dn : fs.getDataNodeStats(DatanodeReportType.LIVE)) {
            System.err.println("MiniDfs: live datanode ip=" + dn.getIpAddr()
                    + " host=" + dn.getHostName() + " xfer=" + dn.getXferAddr());
            if (!LOOPBACK.equals(dn.getIpAddr())) {
                throw new IllegalStateException("datanode registered as " + dn.getIpAddr()
                        + ", clients outside this JVM expect " + LOOPBACK);
            }
        }

        // The datanode's HTTP port, for tests that read its own metrics (JMX BytesRead).
        ready.println("DATANODE_HTTP http://" + LOOPBACK + ":"
                + started.getDataNodes().get(0).getInfoPort());
        ready.println("READY hdfs://" + LOOPBACK + ":" + started.getNameNodePort());
        ready.flush();

        waitForEof(System.in);
        System.err.println("MiniDfs: stdin closed, shutting down");
        stop();
        System.exit(0);
    }

    private static Configuration buildConf(File base) {
        Configuration conf = new HdfsConfiguration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(base, "dfs").getPath());
        conf.set("hadoop.tmp.dir", new File(base, "tmp").getPath());

        // Any local user may create and overwrite paths.
        conf.setBoolean("dfs.permissions.enabled", false);

        // Everything on loopback, every port chosen by the kernel.
        conf.set("dfs.namenode.rpc-bind-host", LOOPBACK);
        conf.set("dfs.namenode.http-address", LOOPBACK + ":0");
        conf.set("dfs.namenode.https-address", LOOPBACK + ":0");
        conf.set("dfs.datanode.address", LOOPBACK + ":0");
        conf.set("dfs.datanode.http.address", LOOPBACK + ":0");
        conf.set("dfs.datanode.https.address", LOOPBACK + ":0");
        conf.set("dfs.datanode.ipc.address", LOOPBACK + ":0");
        conf.set("dfs.datanode.hostname", LOOPBACK);

        // Clients (the Rust one included) reach the datanode by its IP, never by a hostname.
        conf.setBoolean("dfs.client.use.datanode.hostname", false);
        conf.setBoolean("dfs.datanode.use.datanode.hostname", false);
        // The datanode must register even when 127.0.0.1 does not reverse-resolve.
        conf.setBoolean("dfs.namenode.datanode.registration.ip-hostname-check", false);

        // A single datanode: never try to find a replacement for a failed pipeline node.
        conf.setInt("dfs.replication", 1);
        conf.set("dfs.client.block.write.replace-datanode-on-failure.policy", "NEVER");
        conf.setBoolean("dfs.client.block.write.replace-datanode-on-failure.enable", false);

        // Small heap: fewer handler threads and smaller caches than the defaults.
        conf.setInt("dfs.namenode.handler.count", 4);
        conf.setInt("dfs.namenode.service.handler.count", 2);
        conf.setInt("dfs.datanode.handler.count", 4);
        return conf;
    }

    private static void waitForEof(InputStream in) {
        byte[] buf = new byte[256];
        try {
            while (in.read(buf) >= 0) {
                // input is ignored; only end-of-file matters
            }
        } catch (IOException e) {
            System.err.println("MiniDfs: stdin failed (" + e + "), shutting down");
        }
    }

    private static void stop() {
        MiniDFSCluster toStop;
        synchronized (LOCK) {
            if (stopped) {
                return;
            }
            stopped = true;
            toStop = cluster;
        }
        if (toStop != null) {
            shutdownQuietly(toStop);
        }
    }

    private static void shutdownQuietly(MiniDFSCluster c) {
        try {
            c.shutdown();
            System.err.println("MiniDfs: cluster stopped");
        } catch (RuntimeException e) {
            System.err.println("MiniDfs: error during shutdown: " + e);
        }
    }
}
