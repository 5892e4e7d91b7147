/*
 * The runner jar of the Flink CDC session cell (session-flink-cdc.yaml): a FlinkSessionJob's jarURI
 * is one jar, and the Flink CDC 3.1 CLI cannot be that jar — it blocks on the job's result, which a
 * session cluster's web submission cannot give (the operator's /jars/run would fail after the job
 * was already submitted). This runner does what the CLI does — parse the pipeline YAML, compose it
 * with the Flink CDC composer in the environment Flink gives the program — and returns once the
 * job is submitted. Its argument is the pipeline YAML: a local path, or the YAML's https:// URL on
 * the gateway (read with --token-file/--ca-file), so a new pipeline version is a new URL in `args`.
 * The Flink CDC jars themselves (cli, composer, runtime, common, the pipeline connectors) are in
 * the session cluster's /opt/flink/lib, fetched by its pods' init container.
 *
 * Compiled by tests/k8s/build-jobs.sh against Flink 1.18.1 and Flink CDC 3.1.0.
 */
package org.apache.flink.examples;

import org.apache.flink.cdc.cli.parser.YamlPipelineDefinitionParser;
import org.apache.flink.cdc.common.configuration.Configuration;
import org.apache.flink.cdc.composer.PipelineExecution;
import org.apache.flink.cdc.composer.definition.PipelineDef;
import org.apache.flink.cdc.composer.flink.FlinkPipelineComposer;
import org.apache.flink.util.FlinkRuntimeException;

import java.nio.file.Files;
import java.nio.file.Path;

public final class CdcPipelineRunner {
    private CdcPipelineRunner() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            throw new IllegalArgumentException("usage: CdcPipelineRunner PIPELINE_YAML [--token-file F --ca-file F]");
        }
        Path file = Files.createTempFile("pipeline-", ".yaml");
        Files.writeString(file, GatewayFiles.read(args));
        PipelineDef pipeline = new YamlPipelineDefinitionParser().parse(file, new Configuration());
        Files.delete(file);
        // ofMiniCluster() takes StreamExecutionEnvironment.getExecutionEnvironment(): inside a Flink
        // cluster that is the cluster's own context environment, nothing "mini" about it.
        PipelineExecution execution = FlinkPipelineComposer.ofMiniCluster().compose(pipeline);
        try {
            PipelineExecution.ExecutionInfo info = execution.execute();
            System.out.println("cdc-runner: finished " + info.getId());
        } catch (FlinkRuntimeException e) {
            // A session cluster's web submission has no job result to wait for; the job was
            // submitted and the operator follows it from here.
            if (e.getMessage() == null || !e.getMessage().contains("Web Submission")) {
                throw e;
            }
            System.out.println("cdc-runner: submitted (not waiting: " + e.getMessage() + ")");
        }
    }
}
