# Written by `frugalbench compress` from submission 'fastscnn_camvid'.
# The harness's FrugalbenchCompressed model type (frugalbench.compression.rebuild) rebuilds the
# parent model and applies compression_plan before the checkpoint is loaded; see docs/compression.md.
model = {
    'type': 'FrugalbenchCompressed',
    'base_type': 'EncoderDecoder',
    'plan_version': 1,
    'compression_plan': [
        {
            'op': 'reshape',
            'modules': {
                'backbone.learning_to_downsample.conv.conv': {
                    'attributes': {'out_channels': 16},
                    'tensors': {'weight': [16, 3, 3, 3]},
                },
                'backbone.learning_to_downsample.conv.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.learning_to_downsample.dsconv1.depthwise_conv.conv': {
                    'attributes': {'in_channels': 16, 'out_channels': 16, 'groups': 16},
                    'tensors': {'weight': [16, 1, 3, 3]},
                },
                'backbone.learning_to_downsample.dsconv1.depthwise_conv.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.learning_to_downsample.dsconv1.pointwise_conv.conv': {
                    'attributes': {'in_channels': 16, 'out_channels': 24},
                    'tensors': {'weight': [24, 16, 1, 1]},
                },
                'backbone.learning_to_downsample.dsconv1.pointwise_conv.bn': {
                    'attributes': {'num_features': 24},
                    'tensors': {'weight': [24], 'bias': [24], 'running_mean': [24], 'running_var': [24]},
                },
                'backbone.learning_to_downsample.dsconv2.depthwise_conv.conv': {
                    'attributes': {'in_channels': 24, 'out_channels': 24, 'groups': 24},
                    'tensors': {'weight': [24, 1, 3, 3]},
                },
                'backbone.learning_to_downsample.dsconv2.depthwise_conv.bn': {
                    'attributes': {'num_features': 24},
                    'tensors': {'weight': [24], 'bias': [24], 'running_mean': [24], 'running_var': [24]},
                },
                'backbone.learning_to_downsample.dsconv2.pointwise_conv.conv': {
                    'attributes': {'in_channels': 24, 'out_channels': 32},
                    'tensors': {'weight': [32, 24, 1, 1]},
                },
                'backbone.learning_to_downsample.dsconv2.pointwise_conv.bn': {
                    'attributes': {'num_features': 32},
                    'tensors': {'weight': [32], 'bias': [32], 'running_mean': [32], 'running_var': [32]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.0.conv': {
                    'attributes': {'in_channels': 32, 'out_channels': 192},
                    'tensors': {'weight': [192, 32, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.0.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.1.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 192, 'groups': 192},
                    'tensors': {'weight': [192, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.1.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.2.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 32},
                    'tensors': {'weight': [32, 192, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.0.conv.2.bn': {
                    'attributes': {'num_features': 32},
                    'tensors': {'weight': [32], 'bias': [32], 'running_mean': [32], 'running_var': [32]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.0.conv': {
                    'attributes': {'in_channels': 32, 'out_channels': 192},
                    'tensors': {'weight': [192, 32, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.0.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.1.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 192, 'groups': 192},
                    'tensors': {'weight': [192, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.1.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.2.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 32},
                    'tensors': {'weight': [32, 192, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.1.conv.2.bn': {
                    'attributes': {'num_features': 32},
                    'tensors': {'weight': [32], 'bias': [32], 'running_mean': [32], 'running_var': [32]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.0.conv': {
                    'attributes': {'in_channels': 32, 'out_channels': 192},
                    'tensors': {'weight': [192, 32, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.0.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.1.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 192, 'groups': 192},
                    'tensors': {'weight': [192, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.1.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.2.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 32},
                    'tensors': {'weight': [32, 192, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck1.2.conv.2.bn': {
                    'attributes': {'num_features': 32},
                    'tensors': {'weight': [32], 'bias': [32], 'running_mean': [32], 'running_var': [32]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.0.conv': {
                    'attributes': {'in_channels': 32, 'out_channels': 192},
                    'tensors': {'weight': [192, 32, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.0.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.1.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 192, 'groups': 192},
                    'tensors': {'weight': [192, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.1.bn': {
                    'attributes': {'num_features': 192},
                    'tensors': {'weight': [192], 'bias': [192], 'running_mean': [192], 'running_var': [192]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.2.conv': {
                    'attributes': {'in_channels': 192, 'out_channels': 48},
                    'tensors': {'weight': [48, 192, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.0.conv.2.bn': {
                    'attributes': {'num_features': 48},
                    'tensors': {'weight': [48], 'bias': [48], 'running_mean': [48], 'running_var': [48]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.0.conv': {
                    'attributes': {'in_channels': 48, 'out_channels': 288},
                    'tensors': {'weight': [288, 48, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.0.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.1.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 288, 'groups': 288},
                    'tensors': {'weight': [288, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.1.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.2.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 48},
                    'tensors': {'weight': [48, 288, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.1.conv.2.bn': {
                    'attributes': {'num_features': 48},
                    'tensors': {'weight': [48], 'bias': [48], 'running_mean': [48], 'running_var': [48]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.0.conv': {
                    'attributes': {'in_channels': 48, 'out_channels': 288},
                    'tensors': {'weight': [288, 48, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.0.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.1.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 288, 'groups': 288},
                    'tensors': {'weight': [288, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.1.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.2.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 48},
                    'tensors': {'weight': [48, 288, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck2.2.conv.2.bn': {
                    'attributes': {'num_features': 48},
                    'tensors': {'weight': [48], 'bias': [48], 'running_mean': [48], 'running_var': [48]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.0.conv': {
                    'attributes': {'in_channels': 48, 'out_channels': 288},
                    'tensors': {'weight': [288, 48, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.0.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.1.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 288, 'groups': 288},
                    'tensors': {'weight': [288, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.1.bn': {
                    'attributes': {'num_features': 288},
                    'tensors': {'weight': [288], 'bias': [288], 'running_mean': [288], 'running_var': [288]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.2.conv': {
                    'attributes': {'in_channels': 288, 'out_channels': 64},
                    'tensors': {'weight': [64, 288, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.0.conv.2.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.0.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 384},
                    'tensors': {'weight': [384, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.0.bn': {
                    'attributes': {'num_features': 384},
                    'tensors': {'weight': [384], 'bias': [384], 'running_mean': [384], 'running_var': [384]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.1.conv': {
                    'attributes': {'in_channels': 384, 'out_channels': 384, 'groups': 384},
                    'tensors': {'weight': [384, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.1.bn': {
                    'attributes': {'num_features': 384},
                    'tensors': {'weight': [384], 'bias': [384], 'running_mean': [384], 'running_var': [384]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.2.conv': {
                    'attributes': {'in_channels': 384, 'out_channels': 64},
                    'tensors': {'weight': [64, 384, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.1.conv.2.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.0.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 384},
                    'tensors': {'weight': [384, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.0.bn': {
                    'attributes': {'num_features': 384},
                    'tensors': {'weight': [384], 'bias': [384], 'running_mean': [384], 'running_var': [384]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.1.conv': {
                    'attributes': {'in_channels': 384, 'out_channels': 384, 'groups': 384},
                    'tensors': {'weight': [384, 1, 3, 3]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.1.bn': {
                    'attributes': {'num_features': 384},
                    'tensors': {'weight': [384], 'bias': [384], 'running_mean': [384], 'running_var': [384]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.2.conv': {
                    'attributes': {'in_channels': 384, 'out_channels': 64},
                    'tensors': {'weight': [64, 384, 1, 1]},
                },
                'backbone.global_feature_extractor.bottleneck3.2.conv.2.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.global_feature_extractor.ppm.0.1.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 16},
                    'tensors': {'weight': [16, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.ppm.0.1.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.global_feature_extractor.ppm.1.1.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 16},
                    'tensors': {'weight': [16, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.ppm.1.1.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.global_feature_extractor.ppm.2.1.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 16},
                    'tensors': {'weight': [16, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.ppm.2.1.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.global_feature_extractor.ppm.3.1.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 16},
                    'tensors': {'weight': [16, 64, 1, 1]},
                },
                'backbone.global_feature_extractor.ppm.3.1.bn': {
                    'attributes': {'num_features': 16},
                    'tensors': {'weight': [16], 'bias': [16], 'running_mean': [16], 'running_var': [16]},
                },
                'backbone.global_feature_extractor.out.conv': {
                    'attributes': {'in_channels': 128, 'out_channels': 64},
                    'tensors': {'weight': [64, 128, 3, 3]},
                },
                'backbone.global_feature_extractor.out.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.feature_fusion.dwconv.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64, 'groups': 64},
                    'tensors': {'weight': [64, 1, 3, 3]},
                },
                'backbone.feature_fusion.dwconv.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.feature_fusion.conv_lower_res.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64},
                    'tensors': {'weight': [64, 64, 1, 1]},
                },
                'backbone.feature_fusion.conv_lower_res.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'backbone.feature_fusion.conv_higher_res.conv': {
                    'attributes': {'in_channels': 32, 'out_channels': 64},
                    'tensors': {'weight': [64, 32, 1, 1]},
                },
                'backbone.feature_fusion.conv_higher_res.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'decode_head.conv_seg': {
                    'attributes': {'in_channels': 64},
                    'tensors': {'weight': [11, 64, 1, 1]},
                },
                'decode_head.convs.0.depthwise_conv.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64, 'groups': 64},
                    'tensors': {'weight': [64, 1, 3, 3]},
                },
                'decode_head.convs.0.depthwise_conv.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'decode_head.convs.0.pointwise_conv.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64},
                    'tensors': {'weight': [64, 64, 1, 1]},
                },
                'decode_head.convs.0.pointwise_conv.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'decode_head.convs.1.depthwise_conv.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64, 'groups': 64},
                    'tensors': {'weight': [64, 1, 3, 3]},
                },
                'decode_head.convs.1.depthwise_conv.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
                'decode_head.convs.1.pointwise_conv.conv': {
                    'attributes': {'in_channels': 64, 'out_channels': 64},
                    'tensors': {'weight': [64, 64, 1, 1]},
                },
                'decode_head.convs.1.pointwise_conv.bn': {
                    'attributes': {'num_features': 64},
                    'tensors': {'weight': [64], 'bias': [64], 'running_mean': [64], 'running_var': [64]},
                },
            },
        },
    ],
    '_scope_': 'mmseg',
    'auxiliary_head': None,
    'backbone': {
        'align_corners': False,
        'downsample_dw_channels': (32, 48),
        'fusion_out_channels': 128,
        'global_block_channels': (64, 96, 128),
        'global_block_strides': (2, 2, 1),
        'global_in_channels': 64,
        'global_out_channels': 128,
        'higher_in_channels': 64,
        'lower_in_channels': 128,
        'norm_cfg': {'momentum': 0.01, 'requires_grad': True, 'type': 'BN'},
        'out_indices': (0, 1, 2),
        'type': 'FastSCNN',
    },
    'data_preprocessor': {
        'bgr_to_rgb': True,
        'mean': [123.675, 116.28, 103.53],
        'pad_val': 0,
        'seg_pad_val': 255,
        'size': (256, 256),
        'std': [58.395, 57.12, 57.375],
        'type': 'SegDataPreProcessor',
    },
    'decode_head': {
        'align_corners': False,
        'channels': 128,
        'concat_input': False,
        'ignore_index': 255,
        'in_channels': 128,
        'in_index': -1,
        'loss_decode': {
            'avg_non_ignore': True,
            'loss_weight': 1.0,
            'type': 'CrossEntropyLoss',
            'use_sigmoid': False,
        },
        'norm_cfg': {'momentum': 0.01, 'requires_grad': True, 'type': 'BN'},
        'num_classes': 11,
        'type': 'DepthwiseSeparableFCNHead',
    },
    'test_cfg': {'mode': 'whole'},
    'train_cfg': {},
}
train_schedule = {
    'batch_size': 8,
    'crop_size': (256, 256),
    'eta_min': 1.0000000000000002e-06,
    'iters': 300,
    'optimizer': {'lr': 0.0002, 'type': 'AdamW', 'weight_decay': 0.01},
    'poly_power': 0.9,
    'checkpoint_interval': 300,
}
